//! Issue 5, "SIGTERM under load": a role stopped while requests are in flight finishes
//! them, or hands them back with a retryable answer, and loses no event.
//!
//! The whole system runs as separate processes ([`common::system`]). Several desks work
//! at once through the gateway, each on its own copy, alternating checkout and checkin;
//! some desks also check in copies that fill counter holds, so that hold events and ready
//! mails flow. While the desks are busy a role gets SIGTERM:
//!
//! - Yamaga's circulation instance (the desks' own instance), and later the notification
//!   service while ready mails are on their way;
//! - the gateway itself.
//!
//! Each desk behaves like a client that retries what it was told to retry: an answer is
//! either the expected success, or retryable — `503` with code `unavailable` (API.md
//! "Errors"), a refused connection once the process is gone, or a connection closed before
//! any answer — after which the desk sends the same request again until it succeeds
//! (across the restart). Any other answer fails the test. So a request that was cut after
//! its change was committed shows up: its retry meets the changed state (`409`). The
//! stopped process must exit with status 0 within its grace period, and is started again
//! on the same address.
//!
//! After the load: each copy's state at its circulation instance is the one its last
//! successful request left (the next desk action on it succeeds), the catalogue shows the
//! same state for every copy (fed by circulation's events through the outbox), the outbox
//! holds nothing unpublished, and every filled hold got exactly one ready mail.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::system::{
    Api, READY_MAIL, READY_SUBJECT, System, checkout_when_known, counter_patron, exit_status,
    patron_with_address, sigterm, title_with_copies,
};
use common::{eventually, wait_ready};
use serde_json::{Value, json};

/// What a role gets between SIGTERM and SIGKILL in k8s/base (terminationGracePeriodSeconds
/// 30, less the preStop sleep of 5 s).
const GRACE: Duration = Duration::from_secs(25);

/// How long a desk keeps retrying one request (a stopped role's restart included).
const RETRY_FOR: Duration = Duration::from_secs(90);

/// Counts of what the desks were answered.
#[derive(Default)]
struct Tally {
    /// Requests sent and not yet answered.
    in_flight: AtomicUsize,
    /// The expected 2xx.
    ok: AtomicUsize,
    /// 503 `unavailable`.
    unavailable: AtomicUsize,
    /// No connection (the process was gone).
    refused: AtomicUsize,
    /// A connection closed before any answer came.
    closed: AtomicUsize,
    /// Anything else: the failures, described.
    wrong: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// How many requests are in flight now; asserts there are some, so that a stop sent now
    /// meets requests under way.
    fn in_flight_now(&self) -> usize {
        let n = self.in_flight.load(Ordering::SeqCst);
        assert!(n > 0, "requests in flight at the signal");
        n
    }

    fn report(&self) -> String {
        format!(
            "ok {}, 503 unavailable {}, refused {}, closed before an answer {}",
            self.ok(),
            self.unavailable.load(Ordering::SeqCst),
            self.refused.load(Ordering::SeqCst),
            self.closed.load(Ordering::SeqCst)
        )
    }
}

/// One answer to one attempt.
enum Answer {
    /// A complete HTTP answer: the status and the JSON body.
    Http(u16, Value),
    /// The connection could not be made.
    Refused,
    /// The connection was closed before the answer's head came.
    Closed(String),
}

/// One POST through the gateway, keeping transport failures apart. A body that breaks off
/// after the head has come is a cut request: reported as an HTTP answer that is wrong.
async fn post(http: &reqwest::Client, url: &str, token: &str, body: &Value) -> Answer {
    match http.post(url).bearer_auth(token).json(body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.text().await {
                Ok(text) => {
                    Answer::Http(status, serde_json::from_str(&text).unwrap_or(Value::Null))
                }
                Err(e) => Answer::Http(0, json!({"cut": format!("{e:?}")})),
            }
        }
        Err(e) if e.is_connect() => Answer::Refused,
        Err(e) => Answer::Closed(format!("{e:?}")),
    }
}

/// A desk action and what answers it.
struct Step {
    path: String,
    body: Value,
    status: u16,
    /// For a checkin that fills a hold: the hold it must name.
    hold_id: Option<String>,
}

fn checkout(branch: &str, card: &str, barcode: &str) -> Step {
    Step {
        path: format!("/api/v1/branches/{branch}/checkouts"),
        body: json!({"card_number": card, "barcode": barcode}),
        status: 201,
        hold_id: None,
    }
}

fn checkin(branch: &str, barcode: &str, hold_id: Option<String>) -> Step {
    Step {
        path: format!("/api/v1/branches/{branch}/checkins"),
        body: json!({ "barcode": barcode }),
        status: 200,
        hold_id,
    }
}

/// Runs `steps` in order, each until it succeeds (retrying retryable answers); stops at
/// the first wrong answer, which it records.
async fn desk(
    http: reqwest::Client,
    base: String,
    staff: String,
    name: String,
    steps: Vec<Step>,
    tally: Arc<Tally>,
) {
    for (i, step) in steps.iter().enumerate() {
        let url = format!("{base}{}", step.path);
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            tally.in_flight.fetch_add(1, Ordering::SeqCst);
            let answer = post(&http, &url, &staff, &step.body).await;
            tally.in_flight.fetch_sub(1, Ordering::SeqCst);
            let wrong = match answer {
                Answer::Http(s, v) if s == step.status => {
                    let as_expected = match &step.hold_id {
                        Some(h) => v["routing"] == "hold_shelf" && v["hold_id"] == h.as_str(),
                        None => v["routing"].is_null() || v["routing"] == "shelve",
                    };
                    if as_expected {
                        tally.ok.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    Some(format!("{s} {v}"))
                }
                Answer::Http(503, v) if v["error"]["code"] == "unavailable" => {
                    tally.unavailable.fetch_add(1, Ordering::SeqCst);
                    None
                }
                Answer::Http(s, v) => Some(format!("{s} {v}")),
                Answer::Refused => {
                    tally.refused.fetch_add(1, Ordering::SeqCst);
                    None
                }
                Answer::Closed(e) => {
                    tally.closed.fetch_add(1, Ordering::SeqCst);
                    note_closed(&name, &e);
                    None
                }
            };
            if let Some(w) = wrong {
                tally.wrong.lock().unwrap().push(format!(
                    "{name}, step {i} POST {} {}: {w}",
                    step.path, step.body
                ));
                return;
            }
            if Instant::now() > deadline {
                tally.wrong.lock().unwrap().push(format!(
                    "{name}, step {i} POST {}: still not done after {RETRY_FOR:?}",
                    step.path
                ));
                return;
            }
            // The pace of a client's retries, not a wait for a condition.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A connection closed before its answer is retryable only if the request never reached
/// the handler; the retry proves it. Printed so that a run shows how often it happens.
fn note_closed(desk: &str, err: &str) {
    eprintln!("{desk}: connection closed before an answer ({err}); retrying");
}

/// One copy that a desk lends and takes back, over and over.
struct Cycled {
    title_id: String,
    barcode: String,
    card: String,
}

/// Prepares `n` copies at `branch`, each of its own title, on loan to its own borrower
/// (so that every desk's first action is a checkin).
async fn cycled_copies(api: &Api, staff: &str, branch: &str, tag: &str, n: usize) -> Vec<Cycled> {
    let mut out = Vec::new();
    for i in 0..n {
        let barcode = format!("{tag}-{i}");
        let title_id = title_with_copies(
            api,
            staff,
            &format!("銀河鉄道の夜 {tag}{i}"),
            "宮沢賢治",
            &[(barcode.as_str(), branch)],
        )
        .await;
        let card = counter_patron(api, staff, &format!("借りる {tag}{i}")).await;
        checkout_when_known(api, staff, branch, &card, &barcode).await;
        out.push(Cycled {
            title_id,
            barcode,
            card,
        });
    }
    out
}

/// `rounds` checkin/checkout pairs on a copy that is on loan: it ends on loan again.
fn cycle_steps(branch: &str, c: &Cycled, rounds: usize) -> Vec<Step> {
    (0..rounds)
        .flat_map(|_| {
            [
                checkin(branch, &c.barcode, None),
                checkout(branch, &c.card, &c.barcode),
            ]
        })
        .collect()
}

/// The catalogue's status of the copy `barcode` of `title_id` (fed by circulation's events).
async fn catalog_status(api: &Api, title_id: &str, barcode: &str) -> Value {
    let (s, v) = api
        .call("GET", &format!("/api/v1/titles/{title_id}"), None, None)
        .await;
    assert_eq!(s, 200, "{v}");
    v["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["barcode"] == barcode))
        .map(|i| i["status"].clone())
        .unwrap_or(Value::Null)
}

/// The end state of the cycled copies: every one on loan (its last step was a checkout)
/// at its circulation instance — a checkin succeeds — and, after that checkin, available
/// in the catalogue, which hears it through the outbox and NATS.
async fn copies_back_and_catalogued(api: &Api, staff: &str, branch: &str, copies: &[Cycled]) {
    for c in copies {
        eventually(
            "the catalogue sees the last checkout",
            Duration::from_secs(30),
            || async {
                (catalog_status(api, &c.title_id, &c.barcode).await == "on_loan").then_some(())
            },
        )
        .await;
        let (s, v) = api
            .call(
                "POST",
                &format!("/api/v1/branches/{branch}/checkins"),
                Some(staff),
                Some(json!({"barcode": c.barcode})),
            )
            .await;
        assert_eq!(
            (s, v["routing"].as_str()),
            (200, Some("shelve")),
            "{}: {v}",
            c.barcode
        );
    }
    for c in copies {
        eventually(
            "the catalogue sees the final checkin",
            Duration::from_secs(30),
            || async {
                (catalog_status(api, &c.title_id, &c.barcode).await == "available").then_some(())
            },
        )
        .await;
    }
}

/// Waits until the desks have had `n` successes in all.
async fn successes(tally: &Tally, n: usize) {
    eventually(
        &format!("{n} desk actions done"),
        Duration::from_secs(60),
        || async { (tally.ok() >= n).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circulation_and_notification_stopped_under_load_finish_or_refuse_and_lose_nothing() {
    let began = Instant::now();
    let mut sys = System::start("sigterm-circulation").await;
    let staff = sys.staff().await;
    let api = &sys.api;
    let branch = "yamaga";

    // Eight desks, each with a copy on loan to cycle.
    let copies = cycled_copies(api, &staff, branch, "YC", 8).await;
    // Twelve titles whose only copy is on loan and held at the counter for pickup at
    // Yamaga by one of four patrons with a verified address.
    let mut holders = Vec::new();
    for i in 0..4 {
        let email = format!("holder{i}@example.jp");
        let card = patron_with_address(api, &sys.sink, &staff, &format!("予約 {i}"), &email).await;
        holders.push((card, email));
    }
    let borrower = counter_patron(api, &staff, "借りる 予約本").await;
    let other_borrower = counter_patron(api, &staff, "借りる 予約本 二").await;
    let mut held = Vec::new(); // (barcode, hold id, title id), in hold order
    for j in 0..12 {
        let barcode = format!("YH-{j}");
        let title_id = title_with_copies(
            api,
            &staff,
            &format!("風の又三郎 {j}"),
            "宮沢賢治",
            &[(barcode.as_str(), branch)],
        )
        .await;
        let card = if j % 2 == 0 {
            &borrower
        } else {
            &other_borrower
        };
        checkout_when_known(api, &staff, branch, card, &barcode).await;
        let (s, v) = api
            .call(
                "POST",
                &format!("/api/v1/branches/{branch}/holds"),
                Some(&staff),
                Some(json!({"card_number": holders[j % 4].0, "title_id": title_id, "pickup_branch": branch})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        held.push((
            barcode,
            v["hold_id"].as_str().unwrap().to_string(),
            title_id,
        ));
    }

    eprintln!("prepared in {:?}", began.elapsed());
    // Desks 0-3 cycle their copy; desks 4-7 also check in three held copies each, spread
    // over their work, so that holds are filled before, during and after the stops.
    let tally = Arc::new(Tally::default());
    let mut desks = Vec::new();
    for (d, c) in copies.iter().enumerate() {
        let mut steps = Vec::new();
        if d < 4 {
            steps.extend(cycle_steps(branch, c, 7));
        } else {
            for (barcode, hold_id, _) in held.iter().skip(d - 4).step_by(4) {
                steps.extend(cycle_steps(branch, c, 2));
                steps.push(checkin(branch, barcode, Some(hold_id.clone())));
            }
        }
        desks.push(tokio::spawn(desk(
            api.http.clone(),
            api.base.clone(),
            staff.clone(),
            format!("desk {d}"),
            steps,
            tally.clone(),
        )));
    }

    // Mid-load: SIGTERM to Yamaga's instance. It must drain and exit cleanly in time.
    successes(&tally, 25).await;
    let addr = sys.circulation_of(branch).addr().to_string();
    let in_flight = tally.in_flight_now();
    let signalled = Instant::now();
    sigterm(sys.circulation_of(branch));
    let status = exit_status(sys.circulation_of(branch), GRACE).await;
    eprintln!(
        "circulation {branch} stopped in {:?}, {in_flight} requests in flight at the signal",
        signalled.elapsed()
    );
    assert!(
        status.success(),
        "circulation {branch} on SIGTERM: {status:?}"
    );
    let at_stop = tally.report();
    // Started again on its address; the desks' retries go through once it is up.
    let restarted = sys.start_circulation(branch, &addr);
    *sys.circulation_of(branch) = restarted;
    wait_ready(&sys.api.http, &format!("http://{addr}")).await;
    eprintln!(
        "circulation {branch} back after {:?}: {}",
        signalled.elapsed(),
        tally.report()
    );

    // Later, with ready mails flowing: SIGTERM to the notification service.
    let resumed = tally.ok();
    successes(&tally, resumed + 25).await;
    eventually("a ready mail sent", Duration::from_secs(60), || async {
        sys.sink
            .mails()
            .iter()
            .any(|m| m.contains(READY_MAIL))
            .then_some(())
    })
    .await;
    let signalled = Instant::now();
    sigterm(&sys.notification);
    let status = exit_status(&mut sys.notification, GRACE).await;
    eprintln!("notification stopped in {:?}", signalled.elapsed());
    assert!(status.success(), "notification on SIGTERM: {status:?}");
    sys.notification = sys.start_notification();
    wait_ready(&sys.api.http, &sys.notification.url).await;

    for d in desks {
        d.await.unwrap();
    }
    let wrong = tally.wrong.lock().unwrap().clone();
    assert!(
        wrong.is_empty(),
        "answers neither success nor retryable: {wrong:#?}"
    );
    eprintln!(
        "desk answers: at the stop {at_stop}; in all {}",
        tally.report()
    );

    eprintln!("load done after {:?}", began.elapsed());
    // Every event published, every copy where its last answer left it, in circulation
    // and in the catalogue.
    let api = &sys.api;
    eventually("the outbox relayed", Duration::from_secs(30), || async {
        (sys.circulation_outbox_pending().await == 0).then_some(())
    })
    .await;
    eprintln!("outbox empty after {:?}", began.elapsed());
    copies_back_and_catalogued(api, &staff, branch, &copies).await;
    eprintln!("copies checked after {:?}", began.elapsed());
    for (barcode, _, title_id) in &held {
        eventually(
            "the catalogue sees the copy on the hold shelf",
            Duration::from_secs(30),
            || async {
                (catalog_status(api, title_id, barcode).await == "on_hold_shelf").then_some(())
            },
        )
        .await;
    }

    eprintln!("held copies checked after {:?}", began.elapsed());
    // Each filled hold got its ready mail exactly once, and the hold shelf knows it.
    let log = eventually(
        "twelve ready deliveries sent",
        Duration::from_secs(60),
        || async {
            let log = sys.settled_deliveries().await;
            let ready = log
                .iter()
                .filter(|d| d.subject.contains(READY_SUBJECT))
                .count();
            (ready >= 12).then_some(log)
        },
    )
    .await;
    eprintln!("deliveries settled after {:?}", began.elapsed());
    assert!(log.iter().all(|d| d.status == "sent"), "{log:?}");
    let ready: Vec<_> = log
        .iter()
        .filter(|d| d.subject.contains(READY_SUBJECT))
        .collect();
    assert_eq!(
        ready.len(),
        12,
        "one ready delivery per filled hold: {ready:?}"
    );
    let mails: Vec<String> = sys
        .sink
        .mails()
        .into_iter()
        .filter(|m| m.contains(READY_MAIL))
        .collect();
    assert_eq!(mails.len(), 12, "no ready mail lost or sent twice");
    for (_, email) in &holders {
        assert_eq!(
            mails.iter().filter(|m| m.contains(email.as_str())).count(),
            3,
            "{email}"
        );
    }
    eventually(
        "every shelved hold's mail recorded",
        Duration::from_secs(30),
        || async {
            let (s, v) = api
                .call(
                    "GET",
                    &format!("/api/v1/branches/{branch}/hold-shelf"),
                    Some(&staff),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{v}");
            let shelf = v.as_array().cloned().unwrap_or_default();
            held.iter()
                .all(|(_, hold_id, _)| {
                    shelf
                        .iter()
                        .any(|e| e["hold_id"] == hold_id.as_str() && e["mail_sent_at"].is_string())
                })
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_stopped_under_load_finishes_or_refuses_and_loses_nothing() {
    let mut sys = System::start("sigterm-gateway").await;
    let staff = sys.staff().await;
    let branch = "kitsuki";
    let copies = cycled_copies(&sys.api, &staff, branch, "KC", 8).await;

    let tally = Arc::new(Tally::default());
    let desks: Vec<_> = copies
        .iter()
        .enumerate()
        .map(|(d, c)| {
            tokio::spawn(desk(
                sys.api.http.clone(),
                sys.api.base.clone(),
                staff.clone(),
                format!("desk {d}"),
                cycle_steps(branch, c, 10),
                tally.clone(),
            ))
        })
        .collect();

    successes(&tally, 40).await;
    let addr = sys.gateway.addr().to_string();
    let in_flight = tally.in_flight_now();
    let signalled = Instant::now();
    sigterm(&sys.gateway);
    let status = exit_status(&mut sys.gateway, GRACE).await;
    eprintln!(
        "gateway stopped in {:?}, {in_flight} requests in flight at the signal",
        signalled.elapsed()
    );
    assert!(status.success(), "gateway on SIGTERM: {status:?}");
    let at_stop = tally.report();
    sys.gateway = sys.start_gateway_at(&addr);
    wait_ready(&sys.api.http, &sys.api.base).await;

    for d in desks {
        d.await.unwrap();
    }
    let wrong = tally.wrong.lock().unwrap().clone();
    assert!(
        wrong.is_empty(),
        "answers neither success nor retryable: {wrong:#?}"
    );
    eprintln!(
        "desk answers: at the stop {at_stop}; in all {}",
        tally.report()
    );

    eventually("the outbox relayed", Duration::from_secs(30), || async {
        (sys.circulation_outbox_pending().await == 0).then_some(())
    })
    .await;
    copies_back_and_catalogued(&sys.api, &staff, branch, &copies).await;
}
