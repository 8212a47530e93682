//! A measurement, not a check (ignored; `cargo test -p kitsuki-catalog --test index_churn
//! -- --ignored --nocapture`): what a commit per item status event does to a tantivy index
//! in a directory while searches run, against the same changes committed in batches. It
//! prints, for each, the tantivy warnings "couldn't find segment in SegmentManager" (a
//! background merge whose input segment a later commit emptied and dropped: the merge's
//! work is thrown away), the files and bytes of the index directory, and the process's
//! resident memory.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use kitsuki_catalog::index::{IndexDoc, SearchFilter, SearchIndex};

static LOST_MERGES: AtomicUsize = AtomicUsize::new(0);
static MERGE_START_FAILED: AtomicUsize = AtomicUsize::new(0);

/// Counts tantivy's warnings as the subscriber writes them (tantivy logs through `log`,
/// which the subscriber takes in, as the service's does).
struct Counting;

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        if line.contains("couldn't find segment in SegmentManager") {
            LOST_MERGES.fetch_add(1, Ordering::Relaxed);
        }
        if line.contains("Starting the merge failed") {
            MERGE_START_FAILED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn doc(n: usize, available: bool) -> IndexDoc {
    IndexDoc {
        title_id: format!("title-{n:04}"),
        title: format!("こころ 第{n}巻"),
        author: "夏目漱石".into(),
        material_type: "book".into(),
        branches: vec!["yamaga".into()],
        available_branches: if available {
            vec!["yamaga".into()]
        } else {
            vec![]
        },
        created_at: "2026-04-01T00:00:00Z".into(),
        ..IndexDoc::default()
    }
}

fn dir_size(dir: &std::path::Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        files += 1;
        bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
    }
    (files, bytes)
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `changes` changes of `titles` titles (the same few titles again and again, as the
/// copies at a desk), `per_commit` of them per commit, while a thread searches.
fn churn(label: &str, titles: usize, changes: usize, per_commit: usize) {
    let dir = std::env::temp_dir().join(format!("kitsuki-churn-{}", uuid::Uuid::new_v4()));
    let index = Arc::new(SearchIndex::open_or_create(&dir).unwrap());
    index
        .upsert_many(&(0..titles).map(|n| doc(n, true)).collect::<Vec<_>>())
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let searcher = {
        let (index, stop) = (index.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let filter = SearchFilter {
                    available_only: true,
                    ..SearchFilter::default()
                };
                index.search("こころ", &filter, 0, 20).unwrap();
                n += 1;
            }
            n
        })
    };
    let (lost0, failed0, rss0) = (
        LOST_MERGES.load(Ordering::Relaxed),
        MERGE_START_FAILED.load(Ordering::Relaxed),
        rss_kb(),
    );
    let started = Instant::now();
    let mut state = 0usize;
    let mut batch = Vec::with_capacity(per_commit);
    for i in 0..changes {
        // A pseudo-random title, its availability flipping.
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        batch.push(doc((state >> 33) % titles, i % 2 == 0));
        if batch.len() == per_commit {
            index.upsert_many(&batch).unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        index.upsert_many(&batch).unwrap();
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let searches = searcher.join().unwrap();
    let (files, bytes) = dir_size(&dir);
    println!(
        "{label}: {changes} changes of {titles} titles, {per_commit} per commit ({} commits) in {:.1} s; \
         lost merges (\"couldn't find segment in SegmentManager\"): {}, merges not started: {}; \
         index dir {files} files, {} KB; RSS {} -> {} MB; {searches} searches meanwhile; {} docs",
        changes.div_ceil(per_commit),
        took.as_secs_f64(),
        LOST_MERGES.load(Ordering::Relaxed) - lost0,
        MERGE_START_FAILED.load(Ordering::Relaxed) - failed0,
        bytes / 1024,
        rss0 / 1024,
        rss_kb() / 1024,
        index.num_docs(),
    );
    drop(index);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn commits_per_event_against_batches() {
    tracing_subscriber::fmt()
        .with_writer(|| Counting)
        .with_max_level(tracing::Level::WARN)
        .init();
    let changes: usize = std::env::var("CHURN_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    // Changes per commit, e.g. CHURN_BATCHES=1,20 (a commit per event, then batches of 20).
    let batches = std::env::var("CHURN_BATCHES").unwrap_or_else(|_| "1,20".into());
    for per_commit in batches.split(',').filter_map(|b| b.trim().parse().ok()) {
        churn(&format!("{per_commit} per commit"), 40, changes, per_commit);
    }
}
