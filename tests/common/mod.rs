//! Shared helpers of the cross-service tests: start the real `kitsuki` binary as child
//! processes, learn their bound addresses from their `listening on` line, wait for
//! conditions with deadlines (no sleeps as waits), stop them with SIGTERM (or SIGKILL, for
//! the fault tests). [`system`] starts the whole distributed system of issue 4.

#![allow(dead_code)]

pub mod otlp;
pub mod system;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`), for the benches' memory figures.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A running `kitsuki` process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    pub url: String,
    child: Child,
    pub lines: mpsc::Receiver<String>,
    /// What it printed before its `listening on` line.
    pub startup: Vec<String>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_kitsuki")
}

/// Starts `kitsuki ARGS` with `envs` and waits (up to 60 s) for its `listening on` line.
pub fn start(name: &str, args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> Proc {
    start_with_stderr(name, args, envs, cwd, Stdio::inherit())
}

/// [`start`] with the process's stderr (its JSON logs) written to the file `log`.
pub fn start_logging_to(
    name: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    cwd: &Path,
    log: &Path,
) -> Proc {
    let file = std::fs::File::create(log).expect("create the log file");
    start_with_stderr(name, args, envs, cwd, Stdio::from(file))
}

fn start_with_stderr(
    name: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    cwd: &Path,
    stderr: Stdio,
) -> Proc {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .current_dir(cwd)
        .env("KITSUKI_LOG", "warn")
        .env_remove("KITSUKI_LISTEN")
        .env_remove("KITSUKI_DATA_DIR")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    // Waited for in `terminate` or `Drop`, which always reap the child.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("start kitsuki");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let url = url.trim().to_string();
                    seen.push(line);
                    return Proc {
                        name: name.to_string(),
                        url,
                        child,
                        lines: rx,
                        startup: seen,
                    };
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                panic!("{name} did not report its address; printed: {seen:?}");
            }
        }
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `host:port` it listens on, to start a successor on the same address.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// False once the process has exited (stopped, killed or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the process dies at once, mid-work and without its graceful shutdown, as
    /// in a crash or an OOM kill. Returns once it is gone (reaped).
    pub fn kill_hard(&mut self) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit (graceful shutdown); returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not stop on SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every line printed so far: the start-up lines and whatever came after.
    pub fn drain_lines(&self) -> Vec<String> {
        let mut all = self.startup.clone();
        all.extend(self.lines.try_iter());
        all
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Stops a child process that may still run: SIGTERM, up to 5 s to exit, then SIGKILL;
/// always reaps it.
pub fn stop_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Every panel query of a Grafana dashboard (rows' nested panels too), with its panel's
/// title: what tests/metrics_exported.rs and tests/dashboards_query.rs check.
pub fn panel_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.to_string(), e.to_string()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Polls `check` until it returns Some, or panics after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    let url = format!("{base}/readyz");
    eventually("readyz", Duration::from_secs(60), || async {
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => Some(()),
            _ => None,
        }
    })
    .await;
}

pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("kitsuki-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn random_password() -> String {
    format!("pw-{}", uuid::Uuid::new_v4().simple())
}

/// The real SMTP server of the mail tests (aiosmtpd, `services/notification/tests/smtp_sink.py`)
/// on a free loopback port, writing each received mail as `<n>.eml` into its folder.
pub struct SmtpSink {
    pub port: u16,
    pub dir: std::path::PathBuf,
    /// This start's own sub-folder of `dir`, where the sink writes `000001.eml`, `000002.eml`…
    pub folder: std::path::PathBuf,
    child: Option<Child>,
    /// Decoded mails by file: a received file never changes (the sink renames it into
    /// place), and decoding spawns Python, so each is decoded once however often a test
    /// polls.
    decoded: std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, String>>,
}

pub use kitsuki_platform::testing::free_port;

impl SmtpSink {
    /// Starts the sink on `port` (use [`free_port`]) and waits for its "ready" line.
    ///
    /// Each start writes into its own sub-folder of `dir` (the sink numbers its files from
    /// zero), and [`SmtpSink::mails`] reads them all, so a restarted sink keeps the count.
    pub fn start(port: u16, dir: &Path) -> SmtpSink {
        let own = dir.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&own).unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/services/notification/tests/smtp_sink.py"
        );
        #[allow(clippy::zombie_processes)]
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&own)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test installs it)");
        let stdout = child.stdout.take().unwrap();
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).unwrap();
        assert!(first.contains("ready"), "smtp sink said {first:?}");
        SmtpSink {
            port,
            dir: dir.to_path_buf(),
            folder: own,
            child: Some(child),
            decoded: Default::default(),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Closing its standard input stops the sink the quiet way: on SIGTERM, Python
            // may abort at exit ("could not acquire lock for <stdin>") while the thread
            // watching stdin still reads it.
            drop(c.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(c.try_wait(), Ok(None)) {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .status();
            }
            let _ = c.wait();
        }
    }

    /// The mails received so far by every sink started on this folder, oldest first,
    /// decoded to text.
    pub fn mails(&self) -> Vec<String> {
        let mut subdirs: Vec<_> = std::fs::read_dir(&self.dir)
            .map(|r| {
                r.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        subdirs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.created()).ok());
        let mut cache = self.decoded.lock().unwrap_or_else(|e| e.into_inner());
        subdirs
            .iter()
            .flat_map(|d| mail_files(d))
            .map(|p| {
                cache
                    .entry(p.clone())
                    .or_insert_with(|| {
                        decode_mail(&std::fs::read_to_string(&p).unwrap_or_default())
                    })
                    .clone()
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `.eml` files of a folder, in name order.
pub fn mail_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every `.eml` in a folder, in name order, with quoted-printable / base64 bodies decoded.
pub fn read_mails(dir: &Path) -> Vec<String> {
    mail_files(dir)
        .iter()
        .map(|p| decode_mail(&std::fs::read_to_string(p).unwrap_or_default()))
        .collect()
}

/// Decodes a mail's body transfer encoding and its Subject encoded-words (good enough for
/// the plain-text UTF-8 mails of this project), via Python's email package. The `Date`
/// header comes out as an RFC 3339 UTC instant (see [`mail_date`]).
pub fn decode_mail(raw: &str) -> String {
    let script = "import sys, email; from datetime import timezone; from email import policy\n\
m = email.message_from_string(sys.stdin.read(), policy=policy.default)\n\
print('To: ' + str(m['To'])); print('Subject: ' + str(m['Subject'])); print('Message-ID: ' + str(m['Message-ID']))\n\
d = m['Date']; print('Date: ' + (d.datetime.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ') if d and d.datetime else ''))\n\
b = m.get_body(preferencelist=('plain',)); print(); print(b.get_content() if b else '')";
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The sending time a decoded mail's `Date` header gives, as RFC 3339 UTC (to the second).
pub fn mail_date(mail: &str) -> Option<String> {
    mail.lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
}

/// The value of `name=` in the first link of a mail that contains `path`.
pub fn link_token(mail: &str, path: &str) -> Option<String> {
    let at = mail.find(path)?;
    let rest = &mail[at..];
    let t = rest.find("token=")?;
    Some(
        rest[t + 6..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect(),
    )
}
