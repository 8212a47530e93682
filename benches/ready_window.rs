//! Benchmark (not a test): the first-start window of issue 8 — how long the all-in-one
//! (`kitsuki` with no arguments, embedded default) says 503 on `/readyz` after it listens,
//! while its consumers catch up with the seed's events (`kitsuki_platform::catch_up`), and
//! how many checkouts of seed items are refused `item_not_found`:
//!
//! - before `/readyz` says 200 (what the process said ready for before issue 8: it was
//!   ready as soon as it listened), and
//! - right after it says 200 (must be 0).
//!
//! Then the same figures for a large backlog across processes ([`common::system`]): every
//! circulation instance down while 5,000 copies are registered (so they reach circulation
//! only as `ItemCreated` events waiting in its durable consumer on NATS JetStream), then one
//! instance started.
//!
//! Prints figures and asserts nothing about time. Run: `cargo bench --bench ready_window`
//! (or `cargo test --bench ready_window` for a debug build).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Rule L3: 10 loans per patron at most; one is the probe's.
const AFTER_READY: usize = 9;

/// `spread_items` gives title i (from 0) `1 + i % 3` copies, the first `D{i+1:05}-1`.
fn titles_of(items: usize) -> usize {
    let (mut titles, mut n) = (0, 0);
    while n < items {
        n += 1 + titles % 3;
        titles += 1;
    }
    titles
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut r = http.post(format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Copies of the cross-process backlog.
const BACKLOG: usize = 5_000;

#[tokio::main]
async fn main() {
    first_start().await;
    backlog_across_processes().await;
}

/// A restarted circulation instance with [`BACKLOG`] item events waiting.
async fn backlog_across_processes() {
    use common::system::{BRANCHES, System, counter_patron, title_with_copies};
    let mut sys = System::start("ready-window-backlog").await;
    let staff = sys.staff().await;
    let reader = counter_patron(&sys.api, &staff, "計測 花子").await;
    let addr = sys.circulation_of("ota").addr().to_string();
    for branch in BRANCHES {
        sys.circulation_of(branch).terminate();
    }
    let barcodes: Vec<String> = (0..BACKLOG).map(|i| format!("BL-{i:05}")).collect();
    let copies: Vec<(&str, &str)> = barcodes.iter().map(|b| (b.as_str(), "ota")).collect();
    title_with_copies(&sys.api, &staff, "積読の山", "計測", &copies).await;

    let started = Instant::now();
    let restarted = sys.start_circulation("ota", &addr);
    *sys.circulation_of("ota") = restarted;
    let listening = started.elapsed();
    let base = format!("http://{addr}");
    let last = barcodes.last().unwrap().clone();
    let (mut refused_before, mut asked_before) = (0, 0);
    let window = loop {
        let ready = sys
            .api
            .http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break started.elapsed();
        }
        let (s, v) = sys
            .api
            .call(
                "POST",
                "/api/v1/branches/ota/checkouts",
                Some(&staff),
                Some(json!({"card_number": reader, "barcode": last})),
            )
            .await;
        asked_before += 1;
        if s == 404 && v["error"]["code"] == "item_not_found" {
            refused_before += 1;
        } else if s == 201 {
            let _ = sys
                .api
                .call(
                    "POST",
                    "/api/v1/branches/ota/checkins",
                    Some(&staff),
                    Some(json!({"barcode": last})),
                )
                .await;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "never ready");
    };
    let mut refused_after = Vec::new();
    for barcode in barcodes.iter().rev().take(AFTER_READY) {
        let (s, v) = sys
            .api
            .call(
                "POST",
                "/api/v1/branches/ota/checkouts",
                Some(&staff),
                Some(json!({"card_number": reader, "barcode": barcode})),
            )
            .await;
        if s != 201 {
            refused_after.push(format!("{barcode}: {s} {v}"));
        }
    }
    println!(
        "circulation (ota) restarted with {BACKLOG} ItemCreated events waiting (NATS, PostgreSQL)"
    );
    println!("  listening after {:.0} ms", listening.as_secs_f64() * 1e3);
    println!(
        "  /readyz 503 until {:.0} ms after the start (the catch-up window)",
        window.as_secs_f64() * 1e3
    );
    println!(
        "  checkouts of the backlog's last item before ready: {refused_before} of {asked_before} refused item_not_found (ready at once before issue 8)"
    );
    println!(
        "  checkouts right after ready: {} of {AFTER_READY} refused {refused_after:?}",
        refused_after.len()
    );
}

/// The all-in-one's first start with the seed.
async fn first_start() {
    let dir = common::temp_dir("ready-window");
    let password = common::random_password();
    let started = Instant::now();
    let p = common::start(
        "all-in-one",
        &["--listen", "127.0.0.1:0"],
        &[
            ("KITSUKI_DATA_DIR", dir.to_str().unwrap()),
            ("KITSUKI_ADMIN_PASSWORD", &password),
        ],
        &dir,
    );
    let listening = started.elapsed();
    let items: usize = p
        .startup
        .iter()
        .find_map(|l| l.trim().strip_suffix(" items over 杵築・山香・大田"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a first start prints its seed items");
    let titles = titles_of(items);
    let base = p.url.clone();
    let http = reqwest::Client::new();
    let listened = Instant::now();

    let (s, v) = call(
        &http,
        &base,
        "/api/v1/staff/session",
        None,
        json!({"username": "admin", "password": password}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let staff = v["token"].as_str().unwrap().to_string();
    let (s, v) = call(
        &http,
        &base,
        "/api/v1/branches/kitsuki/patrons",
        Some(&staff),
        json!({"name": "計測 太郎", "name_reading": "けいそく", "birth_date": "1985-07-07", "id_document": "driving_licence"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let card = v["card_number"].as_str().unwrap().to_string();
    let checkout = |barcode: String| {
        let (http, base, staff, card) = (http.clone(), base.clone(), staff.clone(), card.clone());
        async move {
            call(
                &http,
                &base,
                "/api/v1/branches/kitsuki/checkouts",
                Some(&staff),
                json!({"card_number": card, "barcode": barcode}),
            )
            .await
        }
    };

    // Until /readyz says 200: the seed's last item, asked again and again.
    let last = format!("D{titles:05}-1");
    let (mut refused_before, mut asked_before) = (0, 0);
    let window = loop {
        let ready = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break listened.elapsed();
        }
        let (s, v) = checkout(last.clone()).await;
        asked_before += 1;
        match s {
            404 if v["error"]["code"] == "item_not_found" => refused_before += 1,
            201 => {
                // Lent before ready: give it back, so the figure after is about all items.
                let _ = call(
                    &http,
                    &base,
                    "/api/v1/branches/kitsuki/checkins",
                    Some(&staff),
                    json!({"barcode": last}),
                )
                .await;
            }
            _ => {}
        }
        assert!(listened.elapsed() < Duration::from_secs(120), "never ready");
    };
    // Right after 200: the seed's last titles' first copies.
    let mut refused_after = Vec::new();
    for i in (titles + 1 - AFTER_READY)..=titles {
        let barcode = format!("D{i:05}-1");
        let (s, v) = checkout(barcode.clone()).await;
        if s != 201 {
            refused_after.push(format!("{barcode}: {s} {v}"));
        }
    }
    println!("first start of the all-in-one (seed: {titles} titles, {items} items)");
    println!(
        "  listening after {:.0} ms (seeding included)",
        listening.as_secs_f64() * 1e3
    );
    println!(
        "  /readyz 503 for {:.0} ms after listening (the catch-up window)",
        window.as_secs_f64() * 1e3
    );
    println!(
        "  checkouts of the seed's last item before ready: {refused_before} of {asked_before} refused item_not_found (ready at once before issue 8)"
    );
    println!(
        "  checkouts right after ready: {} of {AFTER_READY} refused {refused_after:?}",
        refused_after.len()
    );
}
