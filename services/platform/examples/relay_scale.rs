//! The outbox relay at catalogue scale (issue 9): commits `--rows` outbox rows (250,000 by
//! default) to a fresh SQLite file (or PostgreSQL with `--db postgres`), relays them to a
//! journaled in-process bus and to the NATS JetStream of this machine, consumes them all,
//! and prints the times and the resident memory of the process. A measurement, not a
//! test: run it in release,
//!
//! ```text
//! cargo run --release -p kitsuki-platform --example relay_scale -- --rows 250000 --bus both
//! ```
//!
//! The servers are those of the tests (`KITSUKI_TEST_PG_URL`, `KITSUKI_TEST_NATS_URL`); the
//! NATS stream it creates is deleted at the end. The figures before and after the batched
//! relay and the windowed journal are in ARCHITECTURE.md "Events at catalogue scale"; for
//! the peak resident set of the whole run, run it under `/usr/bin/time -v`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kitsuki_platform::bus::{ConsumerSpec, Event, MemoryBus, NatsBus, SharedBus};
use kitsuki_platform::clock::{Clock, SystemClock, format_instant};
use kitsuki_platform::db::{self, Db};
use kitsuki_platform::{outbox, testing};

struct Args {
    rows: usize,
    buses: Vec<String>,
    postgres: bool,
}

fn args() -> Args {
    let mut args = Args {
        rows: 250_000,
        buses: vec!["journal".into(), "nats".into()],
        postgres: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rows" => args.rows = it.next().and_then(|n| n.parse().ok()).expect("--rows N"),
            "--bus" => {
                args.buses = match it.next().as_deref() {
                    Some("both") => vec!["journal".into(), "nats".into()],
                    Some(b @ ("journal" | "nats")) => vec![b.to_string()],
                    _ => panic!("--bus journal|nats|both"),
                }
            }
            "--db" => args.postgres = it.next().as_deref() == Some("postgres"),
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// The resident set of this process, in MB (Linux).
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn outbox_db(postgres: bool) -> Db {
    let url = if postgres {
        testing::fresh_pg_database()
            .await
            .expect("a PostgreSQL database")
    } else {
        testing::fresh_sqlite_url()
    };
    let db = db::connect(&url).await.expect("connect");
    outbox::ensure_tables(&db).await.expect("outbox tables");
    db
}

/// Commits `rows` events shaped like circulation's (a loan on a branch, a trace parent),
/// 5,000 per transaction.
async fn fill(db: &Db, rows: usize) {
    let now = format_instant(SystemClock.now());
    let mut left = rows;
    while left > 0 {
        let n = left.min(5_000);
        let mut tx = db.pool.begin().await.expect("begin");
        for i in 0..n {
            let event = Event::new("circulation.ota.loan.created", vec![(i % 251) as u8; 80])
                .with_header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .with_header("kitsuki-event-time", now.clone());
            outbox::enqueue(&mut tx, &event, &now)
                .await
                .expect("enqueue");
        }
        tx.commit().await.expect("commit");
        left -= n;
    }
}

async fn run(name: &str, bus: SharedBus, db: &Db, rows: usize) {
    let spec = ConsumerSpec::new("relay-scale", "circulation.>");
    // The consumer exists before the events, as the services' consumers do.
    drop(bus.subscribe(&spec).await.expect("subscribe"));
    let rss_before = rss_mb();

    let started = Instant::now();
    let mut relayed = 0;
    while relayed < rows {
        let n = outbox::publish_pending_once(db, &bus).await.expect("relay");
        assert!(
            n > 0,
            "the relay stopped with {relayed} of {rows} published"
        );
        relayed += n;
    }
    let relay = started.elapsed();
    let rss_relayed = rss_mb();

    let started = Instant::now();
    let mut sub = bus.subscribe(&spec).await.expect("subscribe");
    for _ in 0..rows {
        let d = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("a delivery in time")
            .expect("the subscription goes on")
            .expect("a delivery");
        d.ack().await.expect("ack");
    }
    let consume = started.elapsed();
    drop(sub);
    let rss_consumed = rss_mb();
    println!(
        "{name}: relayed {rows} rows in {:.1} s ({:.0} rows/s); consumed and acked them in {:.1} s ({:.0}/s); RSS {rss_before:.0} MB before, {rss_relayed:.0} MB relayed, {rss_consumed:.0} MB consumed",
        relay.as_secs_f64(),
        rows as f64 / relay.as_secs_f64(),
        consume.as_secs_f64(),
        rows as f64 / consume.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    println!(
        "relay_scale: {} rows, outbox on {}, RSS at start {:.0} MB",
        args.rows,
        if args.postgres {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        rss_mb()
    );
    for bus in &args.buses {
        let db = outbox_db(args.postgres).await;
        let started = Instant::now();
        fill(&db, args.rows).await;
        println!(
            "{bus}: {} outbox rows committed in {:.1} s",
            args.rows,
            started.elapsed().as_secs_f64()
        );
        match bus.as_str() {
            "journal" => {
                let dir =
                    std::env::temp_dir().join(format!("kitsuki-relay-{}", testing::unique_id()));
                let memory = MemoryBus::open_journal(&dir.join("bus.db"))
                    .await
                    .expect("journal");
                run("journaled memory bus", Arc::new(memory), &db, args.rows).await;
                let _ = std::fs::remove_dir_all(&dir);
            }
            _ => {
                let nats = NatsBus::connect(&testing::nats_url(), &testing::unique_prefix())
                    .await
                    .expect("NATS");
                let shared: SharedBus = Arc::new(nats.clone());
                run("NATS JetStream", shared, &db, args.rows).await;
                nats.delete_stream().await.expect("delete the stream");
            }
        }
    }
}
