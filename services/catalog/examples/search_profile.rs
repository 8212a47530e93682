//! Replays queries on a search index, for a profiler: `cargo run --release -p
//! kitsuki-catalog --example search_profile -- INDEX_DIR QUERIES_FILE [ROUNDS]`.
//!
//! `INDEX_DIR` is a catalog index folder (`data/catalog-index` of an all-in-one data
//! folder), `QUERIES_FILE` one query per line (`cargo bench --bench catalogue_scale --
//! --file-only` writes the benchmark's 200 to `queries.txt` in its cache). Each round runs
//! every query once for the first page of 20; the figures are per query. Under `perf
//! record -g` it shows where a search spends its time, with no server around it.

use std::time::{Duration, Instant};

use kitsuki_catalog::index::{SearchFilter, SearchIndex};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(file)) = (args.first(), args.get(1)) else {
        eprintln!("usage: search_profile INDEX_DIR QUERIES_FILE [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(10);
    if args.iter().any(|a| a == "--merge") {
        merge_all(std::path::Path::new(dir));
    }
    let index = SearchIndex::open_read_only(std::path::Path::new(dir)).expect("open the index");
    let queries: Vec<String> = std::fs::read_to_string(file)
        .expect("read the queries")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let filter = SearchFilter::default();
    let mut per_query = vec![Duration::ZERO; queries.len()];
    let mut totals = vec![0u64; queries.len()];
    let started = Instant::now();
    for _ in 0..rounds {
        for (i, q) in queries.iter().enumerate() {
            let t = Instant::now();
            let r = index.search(q, &filter, 0, 20).expect("search");
            per_query[i] += t.elapsed();
            totals[i] = r.total;
        }
    }
    let n = (rounds * queries.len()) as f64;
    let mut each: Vec<(Duration, usize)> = per_query
        .iter()
        .enumerate()
        .map(|(i, d)| (*d / rounds as u32, i))
        .collect();
    each.sort();
    println!(
        "{} docs, {} queries × {rounds}: mean {:.3} ms, median {:.3} ms",
        index.num_docs(),
        queries.len(),
        started.elapsed().as_secs_f64() * 1e3 / n,
        each[each.len() / 2].0.as_secs_f64() * 1e3
    );
    println!("slowest:");
    for (d, i) in each.iter().rev().take(10) {
        println!(
            "  {:8.3} ms  {:>7} hits  {:?}",
            d.as_secs_f64() * 1e3,
            totals[*i],
            queries[*i]
        );
    }
}

/// Merges every segment into one (an experiment: what a search costs on one segment).
fn merge_all(dir: &std::path::Path) {
    let index = tantivy::Index::open_in_dir(dir).expect("open");
    let mut writer: tantivy::IndexWriter<tantivy::TantivyDocument> =
        index.writer(200_000_000).expect("writer");
    let ids = index.searchable_segment_ids().expect("segments");
    println!("merging {} segments", ids.len());
    writer.merge(&ids).wait().expect("merge");
    writer.wait_merging_threads().expect("wait");
}
