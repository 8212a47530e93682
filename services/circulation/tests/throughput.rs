//! A figure for the note, not a check: checkins per second at one branch instance on
//! PostgreSQL with holds waiting on every title, sequential and with 8 desks at once.
//! Ignored by default; run with
//! `cargo test -p kitsuki-circulation --release --test throughput -- --ignored --nocapture`.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use kitsuki_proto::Branch::{Kitsuki, Ota, Yamaga};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn checkins_per_second_with_holds_waiting() {
    let lib = Arc::new(Library::open(Backend::Postgres).await);
    let titles = 100;
    let mut barcodes = Vec::new();
    for t in 0..titles {
        let a = format!("KT-{t}-A");
        let b = format!("KT-{t}-B");
        let title = lib.book(&[(&a, Kitsuki), (&b, Kitsuki)]).await;
        lib.lend_away(&a, Kitsuki, 100_000 + t).await;
        lib.lend_away(&b, Kitsuki, 200_000 + t).await;
        for (i, pickup) in [Ota, Yamaga, Kitsuki].into_iter().enumerate() {
            let p = lib.patron(300_000 + t * 10 + i as u32);
            lib.web_hold(pickup, &p, &title, pickup).await;
        }
        barcodes.push(a);
        barcodes.push(b);
    }
    let (first, second) = barcodes.split_at(barcodes.len() / 2);

    let started = Instant::now();
    for b in first {
        lib.kitsuki.checkin(&bc(b), "desk").await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "sequential: {} checkins in {secs:.2} s = {:.0}/s",
        first.len(),
        first.len() as f64 / secs
    );

    let started = Instant::now();
    let chunks: Vec<Vec<String>> = second
        .chunks(second.len() / 8)
        .map(|c| c.to_vec())
        .collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let lib = lib.clone();
            tokio::spawn(async move {
                for b in chunk {
                    lib.kitsuki.checkin(&bc(&b), "desk").await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "8 desks at once: {} checkins in {secs:.2} s = {:.0}/s",
        second.len(),
        second.len() as f64 / secs
    );
}
