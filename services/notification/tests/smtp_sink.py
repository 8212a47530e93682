#!/usr/bin/env python3
"""A small SMTP server for the notification tests. It listens on 127.0.0.1:PORT and
writes each mail, as received, to DIR/<n>.eml, with its envelope in DIR/<n>.json (written
first, so that a reader who sees the .eml also finds its envelope). Each file is written
to a temporary name and renamed, so a reader never sees half a mail. Recipients whose
address starts with "refused" get a 550 answer that quotes the address, as real servers
do. Prints "ready" once it listens; stops on SIGTERM, SIGINT or when its standard input
closes.

    python3 smtp_sink.py PORT DIR

Needs aiosmtpd (pip install aiosmtpd).
"""

import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.count = 0

    def _write(self, name, data):
        temp = os.path.join(self.directory, "." + name + ".tmp")
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(temp, os.path.join(self.directory, name))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Addresses starting with "refused" are refused for good, and the answer quotes
        # the address as real servers do (the client must not log it).
        if address.startswith("refused"):
            return "550 5.1.1 <%s>: Recipient address rejected" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        envelope_json = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
        }
        self._write(f"{n:06d}.json", json.dumps(envelope_json).encode("utf-8"))
        self._write(f"{n:06d}.eml", envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    port = int(sys.argv[1])
    directory = sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin():
        # The test that started us holds our standard input; when it goes away, so do we.
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
