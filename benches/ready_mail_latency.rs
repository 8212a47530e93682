//! Benchmark (not a test): the figures issue 4 asks for, measured on the distributed system
//! as separate processes ([`common::system`]: catalog, patron-account, notification, three
//! circulation instances over one PostgreSQL database, the gateway, NATS JetStream, a real
//! SMTP server on loopback). Prints figures and asserts nothing about time.
//!
//! 1. Ready-mail latency: 200 holds whose items are checked in at their pickup branch one
//!    at a time; for each, the time from the checkin's HTTP answer to the ready mail's file
//!    appearing at the SMTP server (median, p99, max).
//! 2. Checkins per second at one branch instance (kitsuki) with a hold waiting on every
//!    title, sequential through the gateway; and, for comparison, checkins with no hold.
//!
//! Run: `cargo bench --bench ready_mail_latency`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant, SystemTime};

use common::eventually;
use common::system::{
    Api, BRANCHES, READY_MAIL, READY_SUBJECT, System, counter_patron, patron_with_address,
};
use kitsuki_platform::clock::parse_instant;
use serde_json::json;

/// Holds of the latency figure.
const LATENCY_HOLDS: usize = 200;
/// Checkins of the throughput figures.
const THROUGHPUT_CHECKINS: usize = 200;
const BASELINE_CHECKINS: usize = 100;
/// Rules L3 and H11: 10 loans and 10 holds per patron at most.
const PER_PATRON: usize = 10;

/// A copy on loan, and who waits for it (if anyone).
struct Copy {
    barcode: String,
    branch: &'static str,
    holder_email: Option<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(label: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "  {label}: median {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        ms(percentile(&v, 0.5)),
        ms(percentile(&v, 0.99)),
        ms(v[v.len() - 1]),
        v.len()
    );
}

async fn post(api: &Api, staff: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (s, v) = api.call("POST", path, Some(staff), Some(body)).await;
    assert!((200..300).contains(&s), "{path}: {s} {v}");
    v
}

/// `n` titles with one copy each (at `branch_of(i)`), each lent to a borrower and, with
/// `holders`, held at the counter for one of them with pickup where the copy is.
async fn copies_on_loan(
    api: &Api,
    staff: &str,
    tag: &str,
    n: usize,
    branch_of: impl Fn(usize) -> &'static str,
    holders: &[(String, String)],
) -> Vec<Copy> {
    let mut borrowers = Vec::new();
    for i in 0..n.div_ceil(PER_PATRON) {
        borrowers.push(counter_patron(api, staff, &format!("借りる {tag}{i}")).await);
    }
    let mut copies = Vec::new();
    for i in 0..n {
        let branch = branch_of(i);
        let v = post(
            api,
            staff,
            "/api/v1/admin/titles",
            json!({"title": format!("計測用資料 {tag} {i}"), "author": "杵築 計", "type": "book"}),
        )
        .await;
        let title_id = v["title_id"].as_str().unwrap().to_string();
        let barcode = format!("{tag}-{i:04}");
        post(
            api,
            staff,
            "/api/v1/admin/items",
            json!({"title_id": title_id, "barcode": barcode, "branch": branch}),
        )
        .await;
        // Circulation learns of the item from the catalog's events.
        let card = &borrowers[i / PER_PATRON];
        eventually(
            "the item known to circulation",
            Duration::from_secs(30),
            || async {
                let (s, v) = api
                    .call(
                        "POST",
                        &format!("/api/v1/branches/{branch}/checkouts"),
                        Some(staff),
                        Some(json!({"card_number": card, "barcode": barcode})),
                    )
                    .await;
                assert!(s == 201 || s == 404, "{s} {v}");
                (s == 201).then_some(())
            },
        )
        .await;
        let holder_email = if holders.is_empty() {
            None
        } else {
            let (card, email) = &holders[i / PER_PATRON];
            post(
                api,
                staff,
                &format!("/api/v1/branches/{branch}/holds"),
                json!({"card_number": card, "title_id": title_id, "pickup_branch": branch}),
            )
            .await;
            Some(email.clone())
        };
        copies.push(Copy {
            barcode,
            branch,
            holder_email,
        });
    }
    copies
}

async fn holders(
    api: &Api,
    sys: &System,
    staff: &str,
    tag: &str,
    n: usize,
) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for i in 0..n.div_ceil(PER_PATRON) {
        let email = format!("{tag}{i}@example.jp");
        let card =
            patron_with_address(api, &sys.sink, staff, &format!("予約 {tag}{i}"), &email).await;
        v.push((card, email));
    }
    v
}

async fn checkin(api: &Api, staff: &str, copy: &Copy) -> serde_json::Value {
    post(
        api,
        staff,
        &format!("/api/v1/branches/{}/checkins", copy.branch),
        json!({"barcode": copy.barcode}),
    )
    .await
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let sys = System::start("bench-ready-mail").await;
    let api = &sys.api;
    let staff = sys.staff().await;

    // Setup: copies on loan with a counter hold each, spread over the three branches
    // (latency), all at Kitsuki (throughput), and copies on loan with no hold (baseline).
    let latency_holders = holders(api, &sys, &staff, "lat", LATENCY_HOLDS).await;
    let latency = copies_on_loan(
        api,
        &staff,
        "LAT",
        LATENCY_HOLDS,
        |i| BRANCHES[i % 3],
        &latency_holders,
    )
    .await;
    let busy_holders = holders(api, &sys, &staff, "thr", THROUGHPUT_CHECKINS).await;
    let busy = copies_on_loan(
        api,
        &staff,
        "THR",
        THROUGHPUT_CHECKINS,
        |_| "kitsuki",
        &busy_holders,
    )
    .await;
    let idle = copies_on_loan(api, &staff, "BAS", BASELINE_CHECKINS, |_| "kitsuki", &[]).await;
    // Nothing in flight before timing: every mail of the setup (verifications, hold
    // confirmations) has gone out, so the next file at the SMTP server is the ready mail.
    sys.settled_deliveries().await;
    println!(
        "setup: {} processes, {} holds, {:.0} s",
        sys.processes().len(),
        LATENCY_HOLDS + THROUGHPUT_CHECKINS,
        started.elapsed().as_secs_f64()
    );

    // 1. Checkin answer → ready mail at the SMTP server, one hold at a time.
    let folder = sys.sink.folder.clone();
    let mut latencies = Vec::with_capacity(LATENCY_HOLDS);
    let mut files = Vec::with_capacity(LATENCY_HOLDS);
    let mut answered_at = Vec::with_capacity(LATENCY_HOLDS);
    for copy in &latency {
        let received = common::mail_files(&folder).len();
        // The sink numbers its files and renames each into place when complete.
        let next = folder.join(format!("{:06}.eml", received + 1));
        let v = checkin(api, &staff, copy).await;
        let answered = Instant::now();
        answered_at.push(SystemTime::now());
        assert_eq!(v["routing"], "hold_shelf", "{v}");
        let deadline = answered + Duration::from_secs(60);
        while !next.exists() {
            assert!(
                Instant::now() < deadline,
                "no ready mail for {}",
                copy.barcode
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(answered.elapsed());
        files.push((next, copy.holder_email.clone().unwrap()));
    }
    // The files timed were the ready mails of those holds.
    for (file, email) in &files {
        let mail = common::decode_mail(&std::fs::read_to_string(file).unwrap());
        assert!(
            mail.contains(READY_MAIL) && mail.contains(email.as_str()),
            "{mail}"
        );
    }
    // Where the time goes: the notification service's sending time of each ready mail
    // (taken after it looked up the address and the title, before the SMTP dialogue) splits
    // the path into the event's way there and the hand-over to the SMTP server. The
    // holds were checked in one after the other, so the ready deliveries in sending order
    // are theirs in checkin order. Its test clock is never moved here: it is the real one.
    let mut sent: Vec<SystemTime> = sys
        .deliveries()
        .await
        .iter()
        .filter(|d| d.subject.contains(READY_SUBJECT))
        .map(|d| SystemTime::from(parse_instant(&d.sent_at).unwrap()))
        .collect();
    sent.sort();
    assert_eq!(sent.len(), LATENCY_HOLDS);
    let to_sending: Vec<Duration> = answered_at
        .iter()
        .zip(&sent)
        .map(|(a, s)| s.duration_since(*a).unwrap_or_default())
        .collect();
    println!(
        "ready mail: {LATENCY_HOLDS} holds checked in one at a time at their pickup branch (kitsuki, yamaga, ota)"
    );
    summary("checkin answer -> mail file at the SMTP server", latencies);
    summary(
        "of which checkin answer -> notification's sending time",
        to_sending,
    );

    // 2. Sequential checkins at one branch instance through the gateway.
    for (label, copies, routing) in [
        (
            "with a hold waiting (to the hold shelf, ready mail queued)",
            &busy,
            "hold_shelf",
        ),
        (
            "with no hold (back to the shelf), for comparison",
            &idle,
            "shelve",
        ),
    ] {
        let mut each = Vec::with_capacity(copies.len());
        let t = Instant::now();
        for copy in copies {
            let one = Instant::now();
            let v = checkin(api, &staff, copy).await;
            each.push(one.elapsed());
            assert_eq!(v["routing"], routing, "{v}");
        }
        let elapsed = t.elapsed();
        println!(
            "checkins at kitsuki {label}: {} sequential through the gateway",
            copies.len()
        );
        println!(
            "  {:.0} checkins/s ({:.1} s)",
            copies.len() as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
        summary("per checkin", each);
    }
    let dir = sys.dir.clone();
    drop(sys);
    let _ = std::fs::remove_dir_all(&dir);
}
