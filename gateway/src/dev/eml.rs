//! Reading a mail file (`.eml`, RFC 5322) for the developer's outbox pages: just enough
//! MIME for the mails this project writes — one text part in UTF-8 (or ASCII), its body in
//! base64, quoted-printable or 7/8 bit, and headers with RFC 2047 encoded words (lettre
//! writes a Japanese subject or sender name as `=?utf-8?b?…?=`).
//!
//! Anything beyond that (a multipart mail, a charset other than UTF-8 such as ISO-2022-JP)
//! is not decoded but handed back as written, marked so: the page then shows the raw text
//! instead of a wrong guess. Never fails: a malformed part stays as it was.

/// A parsed mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Headers in order, names as written, values unfolded and decoded.
    pub headers: Vec<(String, String)>,
    /// The text of the body with line ends as `\n`: decoded when `body_decoded`, else the
    /// body as written.
    pub body: String,
    pub body_decoded: bool,
}

impl Mail {
    /// The value of the first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole mail file.
pub fn parse(raw: &[u8]) -> Mail {
    let (head, body) = split_head(raw);
    let raw_headers = unfold(&String::from_utf8_lossy(head));
    let find = |name: &str| {
        raw_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let content_type = find("Content-Type").unwrap_or_default();
    let encoding = find("Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();

    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    // RFC 2045: no Content-Type means text/plain in US-ASCII.
    let text = media.is_empty() || media.starts_with("text/");
    let charset_ok = parameter(&content_type, "charset").is_none_or(|c| readable_charset(&c));
    let bytes = match encoding.as_str() {
        "base64" => Some(base64(body)),
        "quoted-printable" => Some(quoted_printable(body, false)),
        "" | "7bit" | "8bit" | "binary" => Some(body.to_vec()),
        _ => None,
    };
    let (body, body_decoded) = match bytes {
        Some(bytes) if text && charset_ok => (String::from_utf8_lossy(&bytes).into_owned(), true),
        _ => (String::from_utf8_lossy(body).into_owned(), false),
    };

    Mail {
        headers: raw_headers
            .into_iter()
            .map(|(n, v)| (n, decode_words(v.trim())))
            .collect(),
        body: body.replace("\r\n", "\n"),
        body_decoded,
    }
}

/// The header block and the body: they part at the first empty line.
fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    let crlf = find(raw, b"\r\n\r\n").map(|i| (i, 4));
    let lf = find(raw, b"\n\n").map(|i| (i, 2));
    let cut = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match cut {
        Some((at, len)) => (&raw[..at], &raw[at + len..]),
        None => (raw, &[]),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Header lines with their continuation lines joined (RFC 5322 unfolding: the line break
/// goes, the leading white space stays).
fn unfold(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.to_string()));
        }
    }
    headers
}

/// The value of parameter `name` of a header such as `text/plain; charset="utf-8"`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (key, v) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Charsets whose bytes are read as UTF-8 without loss (ASCII is a subset).
fn readable_charset(charset: &str) -> bool {
    // RFC 2231 allows a language after `*` (`utf-8*ja`).
    let name = charset.split('*').next().unwrap_or_default();
    ["utf-8", "utf8", "us-ascii", "ascii"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

/// Decodes the RFC 2047 encoded words (`=?charset?B|Q?text?=`) of a header value. The white
/// space between two encoded words is dropped (section 6.2), and their bytes are joined
/// before they are read as text, so that a character split over two words survives.
/// Words in a charset that cannot be read, and malformed ones, stay as written.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    // Bytes of the run of adjacent encoded words not yet turned into text.
    let mut run: Option<Vec<u8>> = None;
    let mut rest = value;
    loop {
        match next_word(rest) {
            Some((start, len, bytes)) => {
                let gap = &rest[..start];
                match run.as_mut() {
                    Some(pending) if gap.trim().is_empty() => pending.extend(bytes),
                    _ => {
                        flush(&mut out, run.take());
                        out.push_str(gap);
                        run = Some(bytes);
                    }
                }
                rest = &rest[start + len..];
            }
            None => {
                flush(&mut out, run.take());
                out.push_str(rest);
                return out;
            }
        }
    }
}

fn flush(out: &mut String, run: Option<Vec<u8>>) {
    if let Some(bytes) = run {
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
}

/// The first well-formed, readable encoded word in `s`: (where it starts, its length, its
/// bytes).
fn next_word(s: &str) -> Option<(usize, usize, Vec<u8>)> {
    let mut from = 0;
    while let Some(found) = s[from..].find("=?") {
        let start = from + found;
        if let Some((len, bytes)) = word_at(&s[start..]) {
            return Some((start, len, bytes));
        }
        from = start + 2;
    }
    None
}

/// Reads `=?charset?enc?text?=` at the start of `s`.
fn word_at(s: &str) -> Option<(usize, Vec<u8>)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    let well_formed = !charset.is_empty()
        && !text.contains(|c: char| c.is_whitespace() || c == '?')
        && !charset.contains(char::is_whitespace);
    if !well_formed || !readable_charset(charset) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => base64(text.as_bytes()),
        "Q" | "q" => quoted_printable(text.as_bytes(), true),
        _ => return None,
    };
    let len = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    Some((len, bytes))
}

/// Base64 (RFC 4648, standard alphabet). Line breaks and other characters outside the
/// alphabet are skipped; decoding stops at the padding.
pub fn base64(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable (RFC 2045 section 6.7); in a header's Q encoding (RFC 2047) `_` is a
/// space. A soft line break (`=` at the end of a line) joins the lines; an `=` not followed
/// by two hex digits stays as written.
pub fn quoted_printable(s: &[u8], header: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'=' => {
                let after = &s[i + 1..];
                // Soft line break; white space before the line end is allowed (and ignored).
                let pad = after
                    .iter()
                    .take_while(|b| **b == b' ' || **b == b'\t')
                    .count();
                let rest = &after[pad..];
                if rest.starts_with(b"\r\n") {
                    i += 1 + pad + 2;
                } else if rest.starts_with(b"\n") {
                    i += 1 + pad + 1;
                } else if let [h, l, ..] = after
                    && let (Some(h), Some(l)) = (hex(*h), hex(*l))
                {
                    out.push(h << 4 | l);
                    i += 3;
                } else {
                    out.push(b'=');
                    i += 1;
                }
            }
            b'_' if header => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitsuki_notification::transport::{Outgoing, build_message};
    use time::OffsetDateTime;

    const BODY: &str = "杵築 花子 様\n\n下のリンクを開いてください。\nhttp://localhost:8080/email/verify?token=abc-123_XYZ\n\n杵築市立図書館\n";

    /// The mail exactly as the notification service writes it to the outbox folder.
    fn service_mail(subject: &str, body: &str) -> Vec<u8> {
        build_message(&Outgoing {
            delivery_id: "0192f1c2-7a5e-7c3b-9d1e-0123456789ab",
            from_name: "杵築市立図書館",
            from_address: "library@city.kitsuki.lg.jp",
            to: "hanako@example.jp",
            subject,
            body,
            date: OffsetDateTime::UNIX_EPOCH,
        })
        .unwrap()
        .formatted()
    }

    #[test]
    fn the_services_own_mails_decode_to_their_subject_sender_and_body() {
        let mail = parse(&service_mail("メールアドレス確認のお願い", BODY));
        assert!(mail.body_decoded);
        assert_eq!(mail.header("subject"), Some("メールアドレス確認のお願い"));
        assert_eq!(mail.header("To"), Some("hanako@example.jp"));
        assert_eq!(
            mail.header("From"),
            Some("杵築市立図書館 <library@city.kitsuki.lg.jp>")
        );
        assert_eq!(mail.body, BODY);
    }

    #[test]
    fn a_long_subject_folded_over_several_encoded_words_reads_as_one_line() {
        let subject = "メールアドレス変更完了のお知らせ（杵築市立図書館・山香図書室・大田図書室からのご案内です）";
        let raw = service_mail(subject, "本文\n");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Subject: =?utf-8?"), "{text}");
        assert_eq!(parse(&raw).header("Subject"), Some(subject));
    }

    #[test]
    fn an_ascii_body_and_a_long_line_survive_whatever_encoding_is_chosen() {
        let long = format!(
            "http://localhost:8080/email/verify?token={}\n",
            "a".repeat(200)
        );
        for body in [
            "plain ascii text\n",
            long.as_str(),
            "日本語\n".repeat(200).as_str(),
        ] {
            assert_eq!(parse(&service_mail("件名", body)).body, body);
        }
    }

    #[test]
    fn encoded_words_join_and_keep_plain_text_around_them() {
        assert_eq!(
            decode_words("=?utf-8?b?44Oh44O844Or?= =?UTF-8?Q?=E3=81=AE?= x"),
            "メールの x"
        );
        assert_eq!(decode_words("Re: =?utf-8?q?a_b?= c"), "Re: a b c");
        assert_eq!(decode_words("plain"), "plain");
        // A character split over two words: the bytes are joined before reading.
        assert_eq!(decode_words("=?utf-8?b?44M=?=\r\n =?utf-8?b?oQ==?="), "メ");
    }

    #[test]
    fn malformed_or_unreadable_encoded_words_stay_as_written() {
        for value in [
            "=?utf-8?x?abc?=",
            "=?utf-8?b?abc",
            "=? utf-8?b?abc?=",
            "a =?iso-2022-jp?b?GyRCJUEbKEI=?= b",
            "=?=?",
        ] {
            assert_eq!(decode_words(value), value);
        }
    }

    #[test]
    fn quoted_printable_bodies_decode_with_soft_breaks() {
        let raw = b"Content-Type: text/plain; charset=\"UTF-8\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n\
=E6=9D=B5=E7=AF=89 http://localhost:8080/email/verify?token=3D=\r\nabc =\r\n\r\n\
50% =XY=\n";
        let mail = parse(raw);
        assert!(mail.body_decoded);
        assert_eq!(
            mail.body,
            "杵築 http://localhost:8080/email/verify?token=abc \n50% =XY"
        );
    }

    #[test]
    fn base64_ignores_line_breaks_and_stops_at_padding() {
        assert_eq!(base64(b"5p2156+J\r\n5biC"), "杵築市".as_bytes());
        assert_eq!(base64(b"YQ==YQ=="), b"a");
        assert_eq!(base64(b""), b"");
    }

    #[test]
    fn what_it_cannot_read_is_shown_as_written() {
        let multipart = b"Content-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nbody\r\n";
        let mail = parse(multipart);
        assert!(!mail.body_decoded);
        assert_eq!(mail.body, "--x\nbody\n");

        let sjis = b"Content-Type: text/plain; charset=iso-2022-jp\r\n\
Content-Transfer-Encoding: base64\r\n\r\nGyRCJUEbKEI=\r\n";
        let mail = parse(sjis);
        assert!(!mail.body_decoded);
        assert_eq!(mail.body, "GyRCJUEbKEI=\n");
    }

    #[test]
    fn a_mail_without_headers_or_body_does_not_fail() {
        assert_eq!(parse(b"").body, "");
        let mail = parse(b"Subject: hi\n\nline\n");
        assert_eq!(mail.header("subject"), Some("hi"));
        assert_eq!(mail.body, "line\n");
        assert!(mail.body_decoded);
        assert_eq!(parse(b"just text").header("x"), None);
    }
}
