//! Benchmark (not a test): the memory of each role at rest, the figure issue 5 asks for.
//! Starts the distributed system as separate processes ([`common::system`]: catalog,
//! patron-account, notification, three circulation instances over PostgreSQL, the
//! gateway, NATS JetStream, a real SMTP server on loopback), as the compose set runs them
//! but without containers (no Docker engine on the machines this is developed on), lets it
//! settle, and prints each process's resident memory (VmRSS) and its peak (VmHWM). Then
//! sends a few hundred catalogue searches and checkouts and prints them again.
//!
//! Run: `cargo bench --bench role_memory` (release build, as the image ships).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::status_kib;
use common::system::{System, counter_patron};

fn print_memory(sys: &System, when: &str) {
    println!("\nmemory {when}:");
    println!("{:<24} {:>10} {:>10}", "role", "RSS MiB", "peak MiB");
    let mut named = vec![
        ("catalog", &sys.catalog),
        ("patron", &sys.patron),
        ("notification", &sys.notification),
    ];
    let names = [
        "circulation kitsuki",
        "circulation yamaga",
        "circulation ota",
    ];
    named.extend(names.iter().copied().zip(sys.circulation.iter()));
    named.push(("gateway", &sys.gateway));
    let mut total = 0;
    for (name, p) in named {
        let rss = status_kib(p.pid(), "VmRSS:").unwrap_or(0);
        let hwm = status_kib(p.pid(), "VmHWM:").unwrap_or(0);
        total += rss;
        println!(
            "{name:<24} {:>10.1} {:>10.1}",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
    println!("{:<24} {:>10.1}", "all roles", total as f64 / 1024.0);
}

#[tokio::main]
async fn main() {
    let sys = System::start("role-memory").await;
    // Connection pools fill lazily and consumers start their first fetch: let it settle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    print_memory(
        &sys,
        "at rest (10 s after every role is ready, empty catalogue)",
    );

    // Some work: 50 titles with a copy each at Kitsuki, 50 checkouts, 300 searches.
    let staff = sys.staff().await;
    let patrons: Vec<String> = futures_patrons(&sys, &staff, 5).await;
    for i in 0..50 {
        let barcode = format!("MEM{i:05}");
        common::system::title_with_copies(
            &sys.api,
            &staff,
            &format!("記憶の測定 {i}"),
            "杵築 太郎",
            &[(barcode.as_str(), "kitsuki")],
        )
        .await;
        let card = &patrons[i % patrons.len()];
        common::system::checkout_when_known(&sys.api, &staff, "kitsuki", card, &barcode).await;
    }
    for i in 0..300 {
        let q = ["記憶", "測定", "杵築", "太郎"][i % 4];
        let (status, _) = sys
            .api
            .call("GET", &format!("/api/v1/titles?q={q}"), None, None)
            .await;
        assert_eq!(status, 200);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    print_memory(&sys, "after 50 titles, 50 checkouts and 300 searches");
}

/// `n` patrons registered at the counter (card numbers).
async fn futures_patrons(sys: &System, staff: &str, n: usize) -> Vec<String> {
    let mut cards = Vec::new();
    for i in 0..n {
        cards.push(counter_patron(&sys.api, staff, &format!("測定 {i}")).await);
    }
    cards
}
