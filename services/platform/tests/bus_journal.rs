//! The journaled in-process bus across restarts (ARCHITECTURE.md "Nothing lost"): a bus is
//! dropped with deliveries out, as a crash would leave it (a drop writes nothing to the
//! file), or its process is killed outright, and a new bus opens the same file. A fresh file
//! per test; waits are deadlines around `next()`, absence is shown with a sentinel.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use kitsuki_platform::bus::{
    BusError, ConsumerSpec, Delivery, Event, JournalOptions, MemoryBus, Outgoing, SharedBus,
    Subscription,
};
use kitsuki_platform::clock::{Clock, SystemClock, TestClock, format_instant};
use kitsuki_platform::db::{self, Db};
use kitsuki_platform::{outbox, testing};
use proptest::prelude::*;
use tokio::io::{AsyncBufReadExt, BufReader};

const DEADLINE: Duration = Duration::from_secs(10);

fn fresh_path() -> PathBuf {
    std::env::temp_dir()
        .join(format!("kitsuki-test-{}", testing::unique_id()))
        .join("bus.db")
}

async fn open(path: &Path) -> SharedBus {
    Arc::new(
        MemoryBus::open_journal(path)
            .await
            .expect("open the journal"),
    )
}

/// A bus keeping only the newest two events in memory, reading back three at a time: most
/// deliveries come from the file.
async fn open_small(path: &Path) -> SharedBus {
    Arc::new(
        MemoryBus::open_journal_with(path, small_window())
            .await
            .expect("open the journal"),
    )
}

fn small_window() -> JournalOptions {
    JournalOptions {
        memory_window: 2,
        page: 3,
        ..JournalOptions::default()
    }
}

async fn next(sub: &mut Box<dyn Subscription>) -> Delivery {
    tokio::time::timeout(DEADLINE, sub.next())
        .await
        .expect("a delivery before the deadline")
        .expect("the subscription goes on")
        .expect("a delivery, not an error")
}

async fn publish(bus: &SharedBus, event: &Event) {
    let outcome = bus.publish(event).await.expect("publish");
    assert!(!outcome.duplicate, "a new id is not a duplicate");
}

async fn subscribe(bus: &SharedBus, durable: &str, filter: &str) -> Box<dyn Subscription> {
    bus.subscribe(&ConsumerSpec::new(durable, filter))
        .await
        .expect("subscribe")
}

/// Publishes a sentinel on `subject`, then receives and acknowledges until it; returns the
/// ids seen before it.
async fn ids_before_sentinel(
    bus: &SharedBus,
    sub: &mut Box<dyn Subscription>,
    subject: &str,
) -> Vec<String> {
    let sentinel = Event::new(subject, b"sentinel".to_vec());
    publish(bus, &sentinel).await;
    let mut ids = Vec::new();
    loop {
        let d = next(sub).await;
        let id = d.event.id.clone();
        d.ack().await.expect("ack");
        if id == sentinel.id {
            return ids;
        }
        ids.push(id);
    }
}

/// A second look at the file, beside the bus, as an operator would take.
async fn file(path: &Path) -> Db {
    db::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the journal file")
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&db.pool)
        .await
        .expect("count")
}

fn events(subject: &str, n: u8) -> Vec<Event> {
    (0..n).map(|i| Event::new(subject, vec![i])).collect()
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

#[tokio::test]
async fn unacked_events_come_again_after_a_crash_and_acked_ones_do_not() {
    let path = fresh_path();
    let loans = events("circulation.ota.loan.created", 6);
    {
        let bus = open(&path).await;
        for (i, e) in loans.iter().enumerate() {
            publish(&bus, e).await;
            // Another consumer's subjects in between, which this one passes over.
            if i % 2 == 0 {
                publish(&bus, &Event::new("catalog.item.created", vec![])).await;
            }
        }
        let mut sub = subscribe(&bus, "loans", "circulation.>").await;
        let d0 = next(&mut sub).await;
        let d1 = next(&mut sub).await;
        let d2 = next(&mut sub).await;
        let d3 = next(&mut sub).await;
        // Acked out of order, and one received but never acked.
        d1.ack().await.expect("ack 1");
        d0.ack().await.expect("ack 0");
        d3.ack().await.expect("ack 3");
        assert_eq!(d2.event.id, loans[2].id);
        // The crash: the delivery, the subscription and the bus go without a word.
        drop((d2, sub, bus));
    }
    let bus = open(&path).await;
    let mut sub = subscribe(&bus, "loans", "circulation.>").await;
    assert_eq!(
        ids_before_sentinel(&bus, &mut sub, "circulation.ota.loan.created").await,
        vec![
            loans[2].id.clone(),
            loans[4].id.clone(),
            loans[5].id.clone()
        ],
        "the unacked one and those never delivered, in order; the acked ones not again"
    );
}

#[tokio::test]
async fn an_id_published_before_a_crash_is_a_duplicate_after_it() {
    let path = fresh_path();
    let event = Event::new("circulation.kitsuki.hold.placed", b"h".to_vec());
    {
        let bus = open(&path).await;
        publish(&bus, &event).await;
    }
    let bus = open(&path).await;
    // The relay, its "published" mark lost to the crash, publishes the row again.
    let again = bus.publish(&event).await.expect("publish again");
    assert!(again.duplicate, "the file remembers the id");
    let mut sub = subscribe(&bus, "holds", "circulation.>").await;
    assert_eq!(
        ids_before_sentinel(&bus, &mut sub, "circulation.kitsuki.hold.placed").await,
        vec![event.id.clone()],
        "stored once"
    );
}

#[tokio::test]
async fn order_is_kept_across_restarts() {
    let path = fresh_path();
    let all = events("circulation.ota.loan.created", 30);
    let mut seen = Vec::new();
    for round in 0..3 {
        let bus = open(&path).await;
        for e in &all[round * 10..round * 10 + 10] {
            publish(&bus, e).await;
        }
        let mut sub = subscribe(&bus, "loans", "circulation.ota.loan.created").await;
        // Half of what is there is handled before each crash; the rest waits.
        for _ in 0..(round * 10 + 10 - seen.len()) / 2 {
            let d = next(&mut sub).await;
            seen.push(d.event.id.clone());
            d.ack().await.expect("ack");
        }
    }
    let bus = open(&path).await;
    let mut sub = subscribe(&bus, "loans", "circulation.ota.loan.created").await;
    seen.extend(ids_before_sentinel(&bus, &mut sub, "circulation.ota.loan.created").await);
    assert_eq!(seen, ids(&all));
}

#[tokio::test]
async fn a_consumer_new_after_a_restart_gets_the_whole_log() {
    let path = fresh_path();
    let titles = events("catalog.title.created", 3);
    {
        let bus = open(&path).await;
        for e in &titles {
            publish(&bus, e).await;
        }
    }
    let bus = open(&path).await;
    let mut sub = subscribe(&bus, "search-index", "catalog.>").await;
    assert_eq!(
        ids_before_sentinel(&bus, &mut sub, "catalog.sentinel").await,
        ids(&titles)
    );
}

#[tokio::test]
async fn publish_and_ack_return_once_the_file_has_them() {
    let path = fresh_path();
    let bus = open(&path).await;
    let look = file(&path).await;
    let event = Event::new("patron.account.created", b"p".to_vec()).with_header("b", "2");
    publish(&bus, &event).await;
    let (subject, payload): (String, Vec<u8>) =
        sqlx::query_as("SELECT subject, payload FROM bus_event WHERE event_id = $1")
            .bind(event.id.as_str())
            .fetch_one(&look.pool)
            .await
            .expect("the event is in the file when publish returns");
    assert_eq!(
        (subject.as_str(), payload),
        ("patron.account.created", b"p".to_vec())
    );
    let mut sub = subscribe(&bus, "audit", "patron.>").await;
    assert_eq!(
        count(&look, "SELECT COUNT(*) FROM bus_consumer WHERE floor = 0").await,
        1,
        "the consumer is known to the file once subscribed"
    );
    next(&mut sub).await.ack().await.expect("ack");
    assert_eq!(
        count(&look, "SELECT COUNT(*) FROM bus_consumer WHERE floor = 1").await,
        1,
        "the ack is in the file when ack returns"
    );
}

#[tokio::test]
async fn acknowledgements_fold_into_a_floor() {
    let path = fresh_path();
    let bus = open(&path).await;
    let look = file(&path).await;
    for e in events("catalog.item.created", 20) {
        publish(&bus, &e).await;
    }
    let mut sub = subscribe(&bus, "items", "catalog.>").await;
    let first = next(&mut sub).await;
    for _ in 1..20 {
        next(&mut sub).await.ack().await.expect("ack");
    }
    assert_eq!(
        count(&look, "SELECT COUNT(*) FROM bus_ack").await,
        19,
        "acked above the one still out: kept one by one"
    );
    assert_eq!(count(&look, "SELECT floor FROM bus_consumer").await, 0);
    first.ack().await.expect("ack the first");
    assert_eq!(
        count(&look, "SELECT COUNT(*) FROM bus_ack").await,
        0,
        "folded into the floor"
    );
    assert_eq!(count(&look, "SELECT floor FROM bus_consumer").await, 20);
}

#[tokio::test]
async fn settled_old_events_are_trimmed_and_sequences_go_on() {
    let path = fresh_path();
    let clock = Arc::new(TestClock::new());
    let options = JournalOptions {
        retention: Duration::from_secs(7 * 24 * 60 * 60),
        clock: clock.clone(),
        ..JournalOptions::default()
    };
    let with_clock = || MemoryBus::open_journal_with(&path, options.clone());
    let old = events("catalog.item.created", 10);
    {
        let bus = with_clock().await.expect("open");
        let shared: SharedBus = Arc::new(bus.clone());
        for e in &old {
            publish(&shared, e).await;
        }
        let patron = Event::new("patron.account.created", vec![]);
        publish(&shared, &patron).await;
        // Everything settled for "all"; only the first four for "slow".
        let mut all = subscribe(&shared, "all", "catalog.>").await;
        for _ in 0..10 {
            next(&mut all).await.ack().await.expect("ack");
        }
        let mut slow = subscribe(&shared, "slow", "catalog.>").await;
        for _ in 0..4 {
            next(&mut slow).await.ack().await.expect("ack");
        }
        // The catalog events, not for it, do not hold this one back.
        let mut patrons = subscribe(&shared, "patrons", "patron.>").await;
        next(&mut patrons).await.ack().await.expect("ack");
        assert_eq!(bus.compact().await.expect("compact"), 0, "too young to go");
        clock.advance(time::Duration::days(8));
        assert_eq!(
            bus.compact().await.expect("compact"),
            4,
            "old, and below every floor"
        );
    }
    let look = file(&path).await;
    assert_eq!(count(&look, "SELECT COUNT(*) FROM bus_event").await, 7);
    assert_eq!(count(&look, "SELECT MIN(seq) FROM bus_event").await, 5);
    let bus: SharedBus = Arc::new(with_clock().await.expect("reopen"));
    let fresh = Event::new("catalog.item.created", b"new".to_vec());
    publish(&bus, &fresh).await;
    assert_eq!(
        count(&look, "SELECT MAX(seq) FROM bus_event").await,
        12,
        "sequences go on after a trim"
    );
    let mut expected = ids(&old[4..]);
    expected.push(fresh.id.clone());
    let mut slow = subscribe(&bus, "slow", "catalog.>").await;
    assert_eq!(
        ids_before_sentinel(&bus, &mut slow, "catalog.sentinel").await,
        expected
    );
    let mut newcomer = subscribe(&bus, "newcomer", "catalog.>").await;
    let got = ids_before_sentinel(&bus, &mut newcomer, "catalog.sentinel").await;
    assert_eq!(
        got[..expected.len()],
        expected[..],
        "a new consumer starts at the oldest event kept"
    );
    assert_eq!(got.len(), expected.len() + 1, "and gets the first sentinel");
    // A trimmed id is forgotten: it is older than the retention, far past any relay retry
    // (the consumers' inbox catches it should it ever come).
    assert!(!bus.publish(&old[0]).await.expect("publish").duplicate);
}

#[tokio::test]
async fn nothing_is_trimmed_while_a_consumer_is_behind() {
    let path = fresh_path();
    let clock = Arc::new(TestClock::new());
    let options = JournalOptions {
        retention: Duration::from_secs(60),
        clock: clock.clone(),
        ..JournalOptions::default()
    };
    let bus = MemoryBus::open_journal_with(&path, options)
        .await
        .expect("open");
    let shared: SharedBus = Arc::new(bus.clone());
    let _idle = subscribe(&shared, "idle", "catalog.>").await;
    for e in events("catalog.item.created", 3) {
        publish(&shared, &e).await;
    }
    clock.advance(time::Duration::days(30));
    assert_eq!(bus.compact().await.expect("compact"), 0);
}

#[tokio::test]
async fn a_publish_whose_caller_stops_waiting_still_completes() {
    let path = fresh_path();
    let bus = open(&path).await;
    let event = Event::new("catalog.item.created", b"c".to_vec());
    // A relay round cancelled by shutdown while publishing: polled once (the write is
    // handed to its own task, which this single-threaded runtime has not run yet), then
    // dropped. A zero timeout is not enough: tokio's timer fires on the next millisecond
    // tick, and a fast disk finishes the write before it.
    let mut publishing = bus.publish(&event);
    let first = std::future::poll_fn(|cx| Poll::Ready(publishing.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "given up before the write ended");
    drop(publishing);
    let again = bus.publish(&event).await.expect("publish again");
    assert!(again.duplicate, "the first write ended all the same");
    publish(&bus, &Event::new("catalog.item.created", b"d".to_vec())).await;
    drop(bus);
    let bus = open(&path).await;
    let mut sub = subscribe(&bus, "items", "catalog.>").await;
    assert_eq!(
        ids_before_sentinel(&bus, &mut sub, "catalog.sentinel").await[0],
        event.id,
        "the file and memory agree, without a gap in the sequence"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_and_ackers_leave_no_gap_and_no_double() {
    let path = fresh_path();
    let mut published = HashSet::new();
    {
        let bus = open(&path).await;
        let mut tasks = Vec::new();
        for t in 0..4u8 {
            let bus = bus.clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..25u8 {
                    let e = Event::new(format!("circulation.t{t}.loan.created"), vec![i]);
                    publish(&bus, &e).await;
                    ids.push(e.id);
                }
                ids
            }));
        }
        let mut sub = subscribe(&bus, "loans", "circulation.>").await;
        // Acks of one consumer racing the publishers; half of it before the crash.
        for _ in 0..50 {
            next(&mut sub).await.ack().await.expect("ack");
        }
        for task in tasks {
            published.extend(task.await.expect("publisher"));
        }
    }
    let bus = open(&path).await;
    let mut audit = subscribe(&bus, "audit", "circulation.>").await;
    let log = ids_before_sentinel(&bus, &mut audit, "circulation.sentinel").await;
    assert_eq!(log.len(), 100);
    assert_eq!(log.iter().cloned().collect::<HashSet<_>>(), published);
    let mut loans = subscribe(&bus, "loans", "circulation.>").await;
    let rest = ids_before_sentinel(&bus, &mut loans, "circulation.sentinel2").await;
    assert_eq!(rest[..50], log[50..], "the unacked half, in order");
}

#[tokio::test]
async fn a_journal_is_open_in_one_bus_at_a_time() {
    let path = fresh_path();
    let bus = MemoryBus::open_journal(&path).await.expect("open");
    let second = MemoryBus::open_journal(&path).await;
    assert!(
        matches!(second, Err(BusError::Conflict(_))),
        "refused while open: {second:?}"
    );
    let clone = bus.clone();
    drop(bus);
    assert!(
        matches!(
            MemoryBus::open_journal(&path).await,
            Err(BusError::Conflict(_))
        ),
        "a clone keeps it open"
    );
    drop(clone);
    MemoryBus::open_journal(&path)
        .await
        .expect("open again once every handle is gone");
}

#[tokio::test]
async fn a_given_up_event_stays_given_up_after_a_restart() {
    let path = fresh_path();
    let mut limited = ConsumerSpec::new("limited", "catalog.>");
    limited.max_deliver = Some(1);
    let poison = Event::new("catalog.item.created", b"poison".to_vec());
    {
        let bus = open(&path).await;
        publish(&bus, &poison).await;
        let mut sub = bus.subscribe(&limited).await.expect("subscribe");
        next(&mut sub).await.nack().await.expect("nack");
        // The next look gives it up and records that before going on.
        assert_eq!(
            ids_before_sentinel(&bus, &mut sub, "catalog.sentinel").await,
            Vec::<String>::new()
        );
        // Crash before anything else is acked.
    }
    let bus = open(&path).await;
    let mut sub = bus.subscribe(&limited).await.expect("subscribe");
    assert_eq!(
        ids_before_sentinel(&bus, &mut sub, "catalog.sentinel").await,
        Vec::<String>::new(),
        "not delivered again"
    );
}

#[tokio::test]
async fn an_event_the_relay_marked_published_survives_a_crash() {
    let path = fresh_path();
    let service = db::connect(&testing::fresh_sqlite_url())
        .await
        .expect("service db");
    outbox::ensure_tables(&service).await.expect("outbox");
    let event = Event::new("circulation.kitsuki.loan.created", b"l".to_vec());
    {
        let mut tx = service.pool.begin().await.expect("begin");
        let now = format_instant(SystemClock.now());
        outbox::enqueue(&mut tx, &event, &now)
            .await
            .expect("enqueue");
        tx.commit().await.expect("commit");
        let bus = open(&path).await;
        assert_eq!(
            outbox::publish_pending_once(&service, &bus)
                .await
                .expect("relay"),
            1
        );
        assert_eq!(outbox::pending_count(&service).await.expect("pending"), 0);
        // The process dies before the consumer ever ran.
    }
    let bus = open(&path).await;
    let mut sub = subscribe(&bus, "mailer", "circulation.>").await;
    let d = next(&mut sub).await;
    assert_eq!(d.event, event);
    d.ack().await.expect("ack");
}

/// Run by [`a_killed_process_loses_nothing_and_doubles_nothing`] in a child process: with
/// `KITSUKI_JOURNAL_CHILD` naming a journal, publishes and consumes without end, printing
/// each id once `publish` or `ack` returned, until it is killed.
#[tokio::test]
#[ignore = "the child of a_killed_process_loses_nothing_and_doubles_nothing"]
async fn journal_child_process() {
    let Ok(path) = std::env::var("KITSUKI_JOURNAL_CHILD") else {
        return;
    };
    let bus = open(Path::new(&path)).await;
    let mut sub = subscribe(&bus, "worker", "circulation.>").await;
    tokio::spawn(async move {
        loop {
            let d = next(&mut sub).await;
            let id = d.event.id.clone();
            d.ack().await.expect("ack");
            println!("acked {id}");
        }
    });
    for n in 0u64.. {
        let event = Event::new("circulation.ota.loan.created", n.to_be_bytes().to_vec());
        publish(&bus, &event).await;
        println!("published {}", event.id);
    }
}

#[tokio::test]
async fn a_killed_process_loses_nothing_and_doubles_nothing() {
    let path = fresh_path();
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "journal_child_process",
            "--ignored",
            "--nocapture",
        ])
        .env("KITSUKI_JOURNAL_CHILD", &path)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut published, mut acked) = (Vec::new(), HashSet::new());
    tokio::time::timeout(DEADLINE, async {
        while published.len() < 150 || acked.len() < 50 {
            let line = lines.next_line().await.expect("read").expect("a line");
            if let Some(id) = line.strip_prefix("published ") {
                published.push(id.to_string());
            } else if let Some(id) = line.strip_prefix("acked ") {
                acked.insert(id.to_string());
            }
        }
    })
    .await
    .expect("the child publishes and consumes");
    // Killed mid-stride: SIGKILL, nothing runs after it. What it printed before dying is
    // still in the pipe.
    child.kill().await.expect("kill");
    while let Some(line) = lines.next_line().await.expect("read") {
        if let Some(id) = line.strip_prefix("published ") {
            published.push(id.to_string());
        } else if let Some(id) = line.strip_prefix("acked ") {
            acked.insert(id.to_string());
        }
    }

    let bus = open(&path).await;
    let mut audit = subscribe(&bus, "audit", "circulation.>").await;
    let log = ids_before_sentinel(&bus, &mut audit, "circulation.sentinel").await;
    assert_eq!(
        log[..published.len()],
        published[..],
        "every publish that returned is kept, in order, once"
    );
    assert!(
        log.len() <= published.len() + 1,
        "at most the one in flight"
    );
    let mut worker = subscribe(&bus, "worker", "circulation.>").await;
    let mut again = ids_before_sentinel(&bus, &mut worker, "circulation.sentinel2").await;
    // Last comes the audit's sentinel, published after the child's events.
    let audit_sentinel = again.pop().expect("the audit's sentinel");
    assert!(!log.contains(&audit_sentinel));
    let again_set: HashSet<&String> = again.iter().collect();
    assert!(
        acked.iter().all(|id| !again_set.contains(id)),
        "no acknowledged event comes again"
    );
    let settled: Vec<&String> = log.iter().filter(|id| !again_set.contains(id)).collect();
    assert!(
        settled.iter().filter(|id| !acked.contains(**id)).count() <= 1,
        "every event not acked comes again (but the one whose ack had returned unprinted)"
    );
    let expected: Vec<&String> = log.iter().filter(|id| again_set.contains(id)).collect();
    assert_eq!(again.iter().collect::<Vec<_>>(), expected, "in order");
    assert!(
        bus.publish(&Event {
            id: published[published.len() - 1].clone(),
            subject: "circulation.ota.loan.created".into(),
            payload: Vec::new(),
            headers: Vec::new(),
        })
        .await
        .expect("publish")
        .duplicate
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever was acknowledged, and wherever the crashes fall, a consumer gets after
    /// each restart exactly the events of its filter it had not acknowledged, in order.
    /// With a window of two events in memory and pages of three, most come back from the
    /// file.
    #[test]
    fn after_any_crash_exactly_the_unacked_events_come_again(
        rounds in prop::collection::vec(
            (
                prop::collection::vec(any::<bool>(), 0..8),
                prop::collection::vec(any::<bool>(), 0..12),
            ),
            1..4,
        ),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let path = fresh_path();
            // (id, matches the filter), in publish order.
            let mut log: Vec<(String, bool)> = Vec::new();
            let mut acked: HashSet<String> = HashSet::new();
            for (subjects, acks) in &rounds {
                let bus = open_small(&path).await;
                for &ours in subjects {
                    let subject = if ours { "catalog.item.created" } else { "patron.x" };
                    let e = Event::new(subject, vec![]);
                    publish(&bus, &e).await;
                    log.push((e.id.clone(), ours));
                }
                let mut sub = subscribe(&bus, "p", "catalog.>").await;
                let mut held = Vec::new();
                let expected: Vec<&String> = log
                    .iter()
                    .filter(|(id, ours)| *ours && !acked.contains(id))
                    .map(|(id, _)| id)
                    .collect();
                for (i, &ack) in acks.iter().enumerate().take(expected.len()) {
                    let d = next(&mut sub).await;
                    assert_eq!(&d.event.id, expected[i], "order after a restart");
                    if ack {
                        acked.insert(d.event.id.clone());
                        d.ack().await.expect("ack");
                    } else {
                        held.push(d);
                    }
                }
                drop((held, sub, bus));
            }
            let bus = open_small(&path).await;
            let mut sub = subscribe(&bus, "p", "catalog.>").await;
            let expected: Vec<String> = log
                .iter()
                .filter(|(id, ours)| *ours && !acked.contains(id))
                .map(|(id, _)| id.clone())
                .collect();
            assert_eq!(
                ids_before_sentinel(&bus, &mut sub, "catalog.sentinel").await,
                expected
            );
        });
    }
}

/// How many events the bus holds in memory, as its `Debug` says.
fn in_memory(bus: &MemoryBus) -> usize {
    let debug = format!("{bus:?}");
    let tail = debug
        .split("in_memory: ")
        .nth(1)
        .expect("the Debug of a MemoryBus says what it holds in memory");
    tail.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

/// Publishes in batches, as the outbox relay does; every event is new.
async fn publish_all(bus: &SharedBus, events: &[Event]) {
    for chunk in events.chunks(500) {
        let batch: Vec<Outgoing> = chunk
            .iter()
            .map(|e| Outgoing {
                event: e.clone(),
                span: tracing::Span::none(),
            })
            .collect();
        let outcome = bus.publish_many(&batch).await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.outcomes.len(), chunk.len());
        assert!(outcome.outcomes.iter().all(|o| !o.duplicate));
    }
}

/// Far more events than the window in memory: a consumer that is behind, one that is new,
/// and redeliveries of old events all come from the file, in order, once each, across a
/// reopen; the bus holds no more than its window meanwhile.
#[tokio::test]
async fn events_older_than_the_window_come_back_from_the_file() {
    let path = fresh_path();
    let options = JournalOptions {
        memory_window: 100,
        page: 64,
        ..JournalOptions::default()
    };
    // Catalog and patron events interleaved, so that a filter passes over many in the file.
    let all: Vec<Event> = (0..1500u32)
        .map(|i| {
            let subject = if i % 3 == 0 {
                "patron.account.created"
            } else {
                "catalog.item.created"
            };
            Event::new(subject, i.to_be_bytes().to_vec())
        })
        .collect();
    let catalog: Vec<&Event> = all
        .iter()
        .filter(|e| e.subject.starts_with("catalog."))
        .collect();
    {
        let bus = MemoryBus::open_journal_with(&path, options.clone())
            .await
            .expect("open");
        let shared: SharedBus = Arc::new(bus.clone());
        let mut behind = subscribe(&shared, "behind", "catalog.>").await;
        publish_all(&shared, &all[..1200]).await;
        for e in &all[1200..] {
            publish(&shared, e).await;
        }
        assert!(in_memory(&bus) <= 100, "{bus:?}");
        // The consumer settles its first ten, then falls away.
        for e in &catalog[..10] {
            let d = next(&mut behind).await;
            assert_eq!(&d.event, *e);
            d.ack().await.expect("ack");
        }
        let spec = ConsumerSpec::new("behind", "catalog.>");
        assert_eq!(
            shared.pending(&spec).await.expect("pending"),
            Some((catalog.len() - 10) as u64),
            "counted in the file too"
        );
        assert!(
            shared.publish(&all[5]).await.expect("publish").duplicate,
            "an id behind the window is still a duplicate"
        );
    }
    let bus = MemoryBus::open_journal_with(&path, options)
        .await
        .expect("reopen");
    assert!(in_memory(&bus) <= 100, "{bus:?}");
    let shared: SharedBus = Arc::new(bus.clone());
    let spec = ConsumerSpec::new("behind", "catalog.>");
    let mark = shared.last_sequence().await.expect("last").expect("known");
    assert_eq!(mark, 1500);
    assert_eq!(
        shared.caught_up(&spec, mark).await.expect("caught up"),
        Some(false)
    );

    // Behind: the rest of its filter, from the file, in order.
    let mut behind = subscribe(&shared, "behind", "catalog.>").await;
    for e in &catalog[10..] {
        let d = next(&mut behind).await;
        assert_eq!(&d.event, *e);
        d.ack().await.expect("ack");
    }
    assert_eq!(
        shared.caught_up(&spec, mark).await.expect("caught up"),
        Some(true)
    );
    assert_eq!(shared.pending(&spec).await.expect("pending"), Some(0));

    // New: everything kept, from the first event on. It holds the first 300 without
    // acknowledging them and drops its subscription; they come again first, from the file.
    let mut fresh = subscribe(&shared, "fresh", ">").await;
    let mut held = Vec::new();
    for e in &all[..300] {
        let d = next(&mut fresh).await;
        assert_eq!(&d.event, e);
        held.push(d);
    }
    drop(held);
    drop(fresh);
    let mut fresh = subscribe(&shared, "fresh", ">").await;
    for (i, e) in all.iter().enumerate() {
        let d = next(&mut fresh).await;
        assert_eq!(&d.event, e);
        assert_eq!(d.delivered, if i < 300 { 2 } else { 1 });
        d.ack().await.expect("ack");
    }
    assert!(in_memory(&bus) <= 100, "{bus:?}");
    assert_eq!(
        ids_before_sentinel(&shared, &mut fresh, "catalog.sentinel").await,
        Vec::<String>::new(),
        "each once"
    );
}
