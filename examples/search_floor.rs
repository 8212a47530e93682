//! Measurement tool (not a test, not the issue's benchmark): search through the gateway
//! against the tantivy floor on the same index, and searches/s at N connections.
//!
//! ```text
//! cargo run --release --example search_floor -- prepare <MARC file> <data dir> [titles]
//! cargo run --release --example search_floor -- raw <index dir> [rounds] [queries file]
//! cargo run --release --example search_floor -- http <base url> [connections] [seconds]
//! ```
//!
//! `prepare` fills an all-in-one's data folder with the file's titles (straight into
//! `catalog.db`, one transaction per 10,000, without events: no consumer needs them for a
//! search measurement) and builds `catalog-index` as the catalog does at its start. `raw`
//! opens the index with [`SearchIndex`] (the server must be stopped: the index has
//! one writer) and runs the 200 two-word queries `rounds` times (or those of a file, one per
//! line: `cargo bench --bench catalogue_scale -- --file-only` writes the benchmark's to
//! `queries.txt` in its cache), printing median and p99 of the last round and the slowest
//! queries; under `perf record -g` it shows where a search spends its time. `http` runs the same queries one after another through
//! `GET /api/v1/titles`, then keeps `connections` clients busy for `seconds` and prints
//! searches/s. The queries are English title words: the test file is the Library of
//! Congress' `BooksAll.2016.part01.utf8` (issue 9).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kitsuki_catalog::index::{SearchFilter, SearchIndex};
use kitsuki_catalog::model::Title;
use kitsuki_catalog::{Catalog, store};
use kitsuki_platform::clock::{SharedClock, SystemClock, format_instant};

const FIRST: &[&str] = &[
    "history",
    "american",
    "new",
    "world",
    "war",
    "life",
    "art",
    "introduction",
    "study",
    "theory",
    "state",
    "national",
    "united",
    "social",
    "international",
    "science",
    "law",
    "english",
    "public",
    "language",
];
const SECOND: &[&str] = &[
    "america",
    "policy",
    "development",
    "report",
    "century",
    "children",
    "education",
    "women",
    "economic",
    "health",
];

/// The 200 two-word queries, in a fixed order.
fn queries() -> Vec<String> {
    let mut out = Vec::with_capacity(FIRST.len() * SECOND.len());
    for b in SECOND {
        for a in FIRST {
            out.push(format!("{a} {b}"));
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn print_latencies(label: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{label}: {} queries, median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    );
}

async fn prepare(file: &str, data: &str, titles: usize) {
    let data = std::path::Path::new(data);
    std::fs::create_dir_all(data).unwrap();
    let url = format!("sqlite://{}", data.join("catalog.db").display());
    let db = kitsuki_platform::db::connect(&url).await.unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    Catalog::open_without_index(db.clone(), Arc::clone(&clock))
        .await
        .unwrap();
    let started = Instant::now();
    let report = kitsuki_catalog::marc::parse_file(std::path::Path::new(file)).unwrap();
    println!(
        "parsed {} records in {:.1} s",
        report.records.len(),
        started.elapsed().as_secs_f64()
    );
    let base = time::OffsetDateTime::now_utc() - time::Duration::days(365);
    let mut inserted = 0usize;
    for (batch, records) in report.records[..titles.min(report.records.len())]
        .chunks(10_000)
        .enumerate()
    {
        let mut tx = db.pool.begin().await.unwrap();
        for (i, r) in records.iter().enumerate() {
            let (new, _) = kitsuki_catalog::import::new_title_from_record(r);
            if new.title.trim().is_empty() {
                continue;
            }
            let n = (batch * 10_000 + i) as i64;
            let title = Title {
                title_id: uuid::Uuid::now_v7().to_string(),
                title: new.title.trim().to_string(),
                title_reading: new.title_reading,
                author: new.author,
                author_reading: String::new(),
                reading_source: String::new(),
                responsibility: new.responsibility,
                ndc: new.ndc,
                publisher: new.publisher,
                year: new.year,
                isbn: new.isbn.map(|i| i.as_str().to_string()).unwrap_or_default(),
                material_type: new.material_type,
                aliases: new.aliases,
                source_id: new.source_id,
                created_at: format_instant(base + time::Duration::seconds(n)),
                holds_waiting: 0,
            };
            let seq = store::take_change_seqs(&mut tx, 1).await.unwrap();
            let created = store::insert_titles(&mut tx, &[(&title, seq)])
                .await
                .unwrap();
            if created.contains(&title.title_id) {
                inserted += 1;
            }
        }
        tx.commit().await.unwrap();
    }
    drop(report);
    println!(
        "inserted {inserted} titles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let catalog = Catalog::open(db, Some(&data.join("catalog-index")), clock)
        .await
        .unwrap();
    println!(
        "index built in {:.1} s ({} titles indexed)",
        started.elapsed().as_secs_f64(),
        catalog.counts().await.unwrap().0
    );
}

fn raw(dir: &str, rounds: usize, file: Option<&str>) {
    let index = SearchIndex::open_or_create(std::path::Path::new(dir)).unwrap();
    println!("index: {} documents", index.num_docs());
    let queries = match file {
        Some(f) => std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        None => queries(),
    };
    let filter = SearchFilter::default();
    let mut totals = 0u64;
    for round in 0..rounds {
        let mut latencies = Vec::with_capacity(queries.len());
        let mut hits = Vec::with_capacity(queries.len());
        for q in &queries {
            let t = Instant::now();
            let result = index.search(q, &filter, 0, 20).unwrap();
            latencies.push(t.elapsed());
            totals += result.total;
            hits.push(result.total);
        }
        if round + 1 == rounds {
            let mut slowest: Vec<usize> = (0..queries.len()).collect();
            slowest.sort_by_key(|&i| std::cmp::Reverse(latencies[i]));
            for &i in slowest.iter().take(10) {
                println!(
                    "  {:8.3} ms  {:>7} hits  {:?}",
                    latencies[i].as_secs_f64() * 1e3,
                    hits[i],
                    queries[i]
                );
            }
            print_latencies("raw SearchIndex::search, top 20", latencies);
        }
    }
    println!("(sum of totals over all rounds: {totals})");
}

async fn http(base: &str, connections: usize, seconds: u64) {
    let client = reqwest::Client::new();
    let queries = Arc::new(queries());
    let url = format!("{base}/api/v1/titles");
    // Warm-up round, then the measured one.
    for round in 0..2 {
        let mut latencies = Vec::with_capacity(queries.len());
        for q in queries.iter() {
            let t = Instant::now();
            let r = client.get(&url).query(&[("q", q)]).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            let _ = r.bytes().await.unwrap();
            latencies.push(t.elapsed());
        }
        if round == 1 {
            print_latencies("gateway GET /api/v1/titles, top 20, sequential", latencies);
        }
    }

    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|c| {
            let client = client.clone();
            let queries = Arc::clone(&queries);
            let url = url.clone();
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut i = c * 13;
                while Instant::now() < deadline {
                    let q = &queries[i % queries.len()];
                    let r = client.get(&url).query(&[("q", q)]).send().await.unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    let _ = r.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let started = Instant::now();
    for w in workers {
        w.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "throughput: {n} searches in {:.1} s at {connections} connections = {:.0} searches/s",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("prepare") => {
            prepare(
                &args[1],
                &args[2],
                args.get(3).map_or(250_000, |n| n.parse().unwrap()),
            )
            .await
        }
        Some("raw") => raw(
            &args[1],
            args.get(2).map_or(3, |r| r.parse().unwrap()),
            args.get(3).map(String::as_str),
        ),
        Some("http") => {
            http(
                &args[1],
                args.get(2).map_or(16, |c| c.parse().unwrap()),
                args.get(3).map_or(10, |s| s.parse().unwrap()),
            )
            .await
        }
        _ => eprintln!(
            "usage: search_floor prepare <MARC file> <data dir> [titles] | raw <index dir> [rounds] [queries file] | http <url> [connections] [seconds]"
        ),
    }
}
