//! Benchmark (not a test): starts the all-in-one binary on a fresh data folder with the
//! real seed records, then sends 1,000 catalogue searches through the gateway's JSON API
//! one after another and prints the median and p99 latency and the process's resident
//! memory. It does so twice: without tracing export, and with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set to a real OTLP gRPC receiver in this process ([`common::otlp`]), so the overhead of
//! tracing (issue 5) is the difference. Run: `cargo bench --bench search_latency`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

const QUERIES: &[&str] = &[
    "錦絵",
    "ちょこれーと",
    "ﾁｮｺﾚｰﾄ",
    "アンの愛情",
    "りはびりてーしょん",
    "研究",
    "夏目",
    "東京",
    "日本",
    "講談",
    "dento",
    "年報",
    "",
    "大学 紀要",
    "こども",
    "歴史",
    "県",
    "写真",
    "医学",
    "江戸",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main]
async fn main() {
    run("without trace export", None).await;
    let receiver = common::otlp::Receiver::default();
    let endpoint = receiver.start();
    run("with trace export to an OTLP receiver", Some(&endpoint)).await;
    println!("spans received by the OTLP receiver: {}", receiver.count());
}

async fn run(label: &str, otlp: Option<&str>) {
    println!("\n== {label}");
    let dir = common::temp_dir("bench");
    let data = dir.join("data").to_string_lossy().to_string();
    let started = Instant::now();
    let proc = common::start(
        "all-in-one",
        &["--listen", "127.0.0.1:0", "--data-dir", &data],
        &[
            ("KITSUKI_ADMIN_PASSWORD", "bench-admin-password"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.unwrap_or("")),
        ],
        &dir,
    );
    let http = reqwest::Client::new();
    common::wait_ready(&http, &proc.url).await;
    println!(
        "first start with seed import: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rss_idle = common::status_kib(proc.pid(), "VmRSS:");

    let mut latencies = Vec::with_capacity(1000);
    for i in 0..1000 {
        let q = QUERIES[i % QUERIES.len()];
        let t = Instant::now();
        let r = http
            .get(format!("{}/api/v1/titles", proc.url))
            .query(&[("q", q)])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let _ = r.bytes().await.unwrap();
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let rss_after = common::status_kib(proc.pid(), "VmRSS:");
    println!("searches: 1000 sequential through the gateway (JSON API)");
    println!(
        "  median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "resident memory: {} MiB after start, {} MiB after the searches",
        rss_idle
            .map(|k| (k / 1024).to_string())
            .unwrap_or_else(|| "?".into()),
        rss_after
            .map(|k| (k / 1024).to_string())
            .unwrap_or_else(|| "?".into())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
