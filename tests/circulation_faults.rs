//! Issue 4, faults across processes ("Nothing lost" in ARCHITECTURE.md): the whole system
//! as separate processes over PostgreSQL and NATS JetStream ([`common::system`]), one of
//! them killed or stopped in the middle of a hold's way to the shelf and started again on
//! the same database.
//!
//! - A branch's circulation instance killed (SIGKILL) while an item travels to it: the
//!   other branches and the patron web go on, the restarted instance receives the item,
//!   and the ready mail goes out exactly once.
//! - The notification service stopped while items reach their hold shelves: the holds wait
//!   for their mails (H8), every ready mail is sent once when it is back, and each shelf
//!   period starts from the mail's actual sending time, not from the item's arrival (H9).
//!
//! Exactly-once is checked after the system has settled: the notification service's
//! delivery log shows nothing pending, so no mail is still on its way that could arrive a
//! second time.

mod common;

use std::time::Duration;

use common::system::{
    Api, BRANCHES, READY_MAIL, READY_SUBJECT, System, advance_clock, checkout_when_known,
    clock_now, counter_patron, hold_of, login, mails_matching, title_with_copies, web_patron,
};
use common::{SmtpSink, eventually, mail_date, wait_ready};
use kitsuki_platform::clock::{format_date, local_date, parse_instant};
use serde_json::{Value, json};

/// Places a web hold, once the title is holdable: the catalog learns that every copy is on
/// loan from circulation's item events (H1), so the first attempts may meet
/// `hold_available_copy`.
async fn place_web_hold(api: &Api, token: &str, title_id: &str, pickup: &str) -> Value {
    eventually(
        "a web hold accepted once no copy is on a shelf",
        Duration::from_secs(30),
        || async {
            let (s, v) = api
                .call(
                    "POST",
                    "/api/v1/me/holds",
                    Some(token),
                    Some(json!({"title_id": title_id, "pickup_branch": pickup, "receipt_mail": false})),
                )
                .await;
            (s == 201).then_some(v)
        },
    )
    .await
}

async fn checkin(api: &Api, staff: &str, branch: &str, barcode: &str) -> (u16, Value) {
    api.call(
        "POST",
        &format!("/api/v1/branches/{branch}/checkins"),
        Some(staff),
        Some(json!({ "barcode": barcode })),
    )
    .await
}

async fn checkout(api: &Api, staff: &str, branch: &str, card: &str, barcode: &str) -> (u16, Value) {
    api.call(
        "POST",
        &format!("/api/v1/branches/{branch}/checkouts"),
        Some(staff),
        Some(json!({"card_number": card, "barcode": barcode})),
    )
    .await
}

/// Waits for the patron's hold to be `ready` and returns it.
async fn ready_hold(api: &Api, token: &str) -> Value {
    eventually("the hold ready", Duration::from_secs(30), || async {
        let h = hold_of(api, token).await;
        (h["status"] == "ready").then_some(h)
    })
    .await
}

/// The received ready mails, decoded.
fn ready_mails(sink: &SmtpSink) -> Vec<String> {
    sink.mails()
        .into_iter()
        .filter(|m| m.contains(READY_MAIL))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yamaga_killed_while_an_item_travels_to_it_then_restarted_loses_nothing_and_mails_once() {
    let mut sys = System::start("faults-kill").await;
    let staff = sys.staff().await;
    let api = &sys.api;

    // A title whose only copy is on loan, and a patron waiting for it at Yamaga.
    let title_id = title_with_copies(
        api,
        &staff,
        "吾輩は猫である",
        "夏目漱石",
        &[("KT-1", "kitsuki")],
    )
    .await;
    // A second title, lent at Kitsuki while Yamaga is down.
    title_with_copies(api, &staff, "こころ", "夏目漱石", &[("KT-2", "kitsuki")]).await;
    let borrower = counter_patron(api, &staff, "借りる 人").await;
    let (card, token, _) =
        web_patron(api, &sys.sink, &staff, "予約 花子", "hanako@example.jp").await;
    checkout_when_known(api, &staff, "kitsuki", &borrower, "KT-1").await;
    let hold = place_web_hold(api, &token, &title_id, "yamaga").await;
    let hold_id = hold["hold_id"].as_str().unwrap().to_string();
    eventually("the hold confirmed", Duration::from_secs(30), || async {
        (hold_of(api, &token).await["status"] == "confirmed").then_some(())
    })
    .await;

    // Returned at Kitsuki: into transit to Yamaga (H7, L5).
    let (s, v) = checkin(api, &staff, "kitsuki", "KT-1").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["routing"].as_str(), v["to_branch"].as_str()),
        (Some("transit"), Some("yamaga")),
        "{v}"
    );
    assert_eq!(hold_of(api, &token).await["status"], "in_transit");

    // Yamaga's instance dies at once, with no shutdown of its own.
    let yamaga_addr = sys.circulation_of("yamaga").addr().to_string();
    sys.circulation_of("yamaga").kill_hard();
    let api = &sys.api;

    // Its desk stops (ARCHITECTURE.md "Data": a branch instance down stops its desk)…
    let (s, v) = checkin(api, &staff, "yamaga", "KT-1").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{v}"
    );
    // …while the other branches and the patron web go on: a search, a loan at Kitsuki's
    // desk, Kitsuki's list of transits still naming the item on its way, the patron's holds.
    eventually(
        "the title found by search",
        Duration::from_secs(30),
        || async {
            let (s, v) = api
                .call("GET", "/api/v1/titles?q=吾輩は猫", None, None)
                .await;
            assert_eq!(s, 200, "{v}");
            v["hits"]
                .as_array()
                .is_some_and(|h| h.iter().any(|t| t["title_id"] == title_id.as_str()))
                .then_some(())
        },
    )
    .await;
    checkout_when_known(api, &staff, "kitsuki", &borrower, "KT-2").await;
    let (s, v) = api
        .call(
            "GET",
            "/api/v1/branches/kitsuki/transits",
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["outgoing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["barcode"] == "KT-1"
                && t["to_branch"] == "yamaga"
                && t["hold_id"] == hold_id.as_str()),
        "{v}"
    );
    assert_eq!(hold_of(api, &token).await["status"], "in_transit");

    // Yamaga comes back on the same database and the same address: the gateway's channel
    // to it reconnects, as it would to a restarted pod behind its Service address, and
    // needs no restart of its own.
    let restarted = sys.start_circulation("yamaga", &yamaga_addr);
    *sys.circulation_of("yamaga") = restarted;
    let api = &sys.api;
    wait_ready(&api.http, &format!("http://{yamaga_addr}")).await;
    let (s, v) = api
        .call(
            "GET",
            "/api/v1/branches/yamaga/transits",
            Some(&staff),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["incoming"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["barcode"] == "KT-1" && t["hold_id"] == hold_id.as_str()),
        "the transit addressed to Yamaga survived its instance: {v}"
    );
    // Its desk checks the item in: onto its hold shelf, for this hold.
    let (s, v) = checkin(api, &staff, "yamaga", "KT-1").await;
    assert_eq!((s, v["routing"].as_str()), (200, Some("hold_shelf")), "{v}");
    assert_eq!(v["hold_id"].as_str(), Some(hold_id.as_str()), "{v}");

    // Killed once more, right after that answer: the ready event may still be in the
    // outbox, a `MailSent` may be half handled. Whatever it was doing is done once.
    sys.circulation_of("yamaga").kill_hard();
    let restarted = sys.start_circulation("yamaga", &yamaga_addr);
    *sys.circulation_of("yamaga") = restarted;
    let api = &sys.api;
    wait_ready(&api.http, &format!("http://{yamaga_addr}")).await;

    // The ready mail arrives (H8); once nothing is pending any more, it arrived once.
    let first = mails_matching(&sys.sink, READY_MAIL, 1).await;
    assert!(
        first[0].contains("hanako@example.jp") && first[0].contains("受取館：山香図書室"),
        "{}",
        first[0]
    );
    let log = sys.settled_deliveries().await;
    assert!(log.iter().all(|d| d.status == "sent"), "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|d| d.subject.contains(READY_SUBJECT))
            .count(),
        1,
        "one ready delivery: {log:?}"
    );
    assert_eq!(ready_mails(&sys.sink).len(), 1, "no ready mail twice");

    // The hold is ready, and the patron borrows the item at Yamaga.
    let h = ready_hold(api, &token).await;
    assert_eq!(h["hold_id"].as_str(), Some(hold_id.as_str()));
    assert!(
        h["ready_until"].as_str().is_some_and(|d| d.len() == 10),
        "{h}"
    );
    let (s, v) = checkout(api, &staff, "yamaga", &card, "KT-1").await;
    assert_eq!(s, 201, "{v}");
}

/// One patron's hold in the notification scenario.
struct Waiting {
    branch: &'static str,
    barcode: String,
    card: String,
    password: String,
    token: String,
    email: String,
    hold_id: String,
    /// The library-local date the item reached the hold shelf, by circulation's clock.
    shelved_on: String,
}

/// `date` + `days` days, for dates as `YYYY-MM-DD`.
fn days_after(date: &str, days: u32) -> String {
    let mut d = local_date(parse_instant(&format!("{date}T03:00:00Z")).unwrap());
    for _ in 0..days {
        d = d.next_day().unwrap();
    }
    format_date(d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_restarted_sends_each_ready_mail_once_and_shelf_clocks_start_at_sending() {
    let mut sys = System::start("faults-notification").await;
    let staff = sys.staff().await;
    let api = &sys.api;

    // Three titles with one copy each, on loan; three patrons, each waiting for one of
    // them at the branch that owns it.
    let borrower = counter_patron(api, &staff, "借りる 人").await;
    let names = ["予約 一郎", "予約 二郎", "予約 三郎"];
    let titles = ["三四郎", "それから", "門"];
    let mut waiting = Vec::new();
    for (i, branch) in BRANCHES.iter().enumerate() {
        let barcode = format!("{}-{i}", &branch[..2].to_uppercase());
        let title_id = title_with_copies(
            api,
            &staff,
            titles[i],
            "夏目漱石",
            &[(barcode.as_str(), branch)],
        )
        .await;
        let email = format!("patron{i}@example.jp");
        let (card, token, password) = web_patron(api, &sys.sink, &staff, names[i], &email).await;
        checkout_when_known(api, &staff, branch, &borrower, &barcode).await;
        let hold = place_web_hold(api, &token, &title_id, branch).await;
        waiting.push(Waiting {
            branch,
            barcode,
            card,
            password,
            token,
            email,
            hold_id: hold["hold_id"].as_str().unwrap().to_string(),
            shelved_on: String::new(),
        });
    }
    for w in &waiting {
        eventually("the hold confirmed", Duration::from_secs(30), || async {
            (hold_of(api, &w.token).await["status"] == "confirmed").then_some(())
        })
        .await;
    }
    // Nothing in flight when the notification service stops.
    sys.settled_deliveries().await;
    let status = sys.notification.terminate();
    assert!(status.success(), "graceful stop: {status:?}");

    // The copies come back at their branches, onto the hold shelves (H7)…
    for w in waiting.iter_mut() {
        let (s, v) = checkin(api, &staff, w.branch, &w.barcode).await;
        assert_eq!((s, v["routing"].as_str()), (200, Some("hold_shelf")), "{v}");
        assert_eq!(v["hold_id"].as_str(), Some(w.hold_id.as_str()), "{v}");
        let i = BRANCHES.iter().position(|b| *b == w.branch).unwrap();
        let now = clock_now(&sys.circulation[i].url).await;
        w.shelved_on = format_date(local_date(parse_instant(&now).unwrap()));
    }
    // …but without their mails they wait (H8): not ready, and not to be lent.
    for w in &waiting {
        let h = hold_of(api, &w.token).await;
        assert_eq!(
            (h["status"].as_str(), &h["ready_until"]),
            (Some("awaiting_notice"), &Value::Null),
            "{h}"
        );
        let (s, v) = checkout(api, &staff, w.branch, &w.card, &w.barcode).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("hold_not_ready")),
            "{v}"
        );
    }

    // A day passes. The gateway's test clock peers are fixed when it starts and it stops
    // at the first that does not answer, so it is started again with the running
    // processes only (sessions live in patron-account and outlast it).
    sys.restart_gateway().await;
    let api = &sys.api;
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/test/clock",
            Some(&staff),
            Some(json!({"advance_days": 1})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let system_now = v["now"].as_str().unwrap().to_string();
    // Sessions idled out over the day: log in again.
    let staff = sys.staff().await;
    for w in waiting.iter_mut() {
        w.token = login(
            api,
            "/api/v1/session",
            json!({"card_number": w.card, "password": w.password}),
        )
        .await;
        assert_eq!(hold_of(api, &w.token).await["status"], "awaiting_notice");
    }

    // The notification service comes back on its database. A process's test clock starts
    // from the real time (the offset lives in its memory), so the restarted one must be
    // brought to the system's day before it may send, or its mails would be sent
    // "yesterday". The SMTP server is held down over the restart so that nothing leaves
    // before: the mails fail and wait for their retry (N2), the process's clock is moved by
    // the same day over its own test clock service (as the gateway does), and then the
    // SMTP server comes back on its port.
    sys.sink.stop();
    sys.notification = sys.start_notification();
    wait_ready(&sys.api.http, &sys.notification.url).await;
    let queued = eventually(
        "the three ready mails queued from the events that waited",
        Duration::from_secs(60),
        || async {
            let log = sys.deliveries().await;
            let ready = log
                .iter()
                .filter(|d| d.subject.contains(READY_SUBJECT))
                .count();
            (ready == 3).then_some(log)
        },
    )
    .await;
    assert!(
        queued
            .iter()
            .filter(|d| d.subject.contains(READY_SUBJECT))
            .all(|d| d.status == "pending"),
        "nothing could be sent with the SMTP server down: {queued:?}"
    );
    let notification_now = advance_clock(&sys.notification.url, 1).await;
    let gap = parse_instant(&notification_now).unwrap() - parse_instant(&system_now).unwrap();
    assert!(
        gap.whole_seconds().abs() < 120,
        "notification's clock {notification_now} is the system's {system_now}"
    );
    let port = sys.sink.port;
    sys.sink = SmtpSink::start(port, &sys.dir.join("smtp"));

    // Every ready mail arrives, once.
    mails_matching(&sys.sink, READY_MAIL, 3).await;
    let log = sys.settled_deliveries().await;
    assert!(log.iter().all(|d| d.status == "sent"), "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|d| d.subject.contains(READY_SUBJECT))
            .count(),
        3,
        "{log:?}"
    );
    let ready = ready_mails(&sys.sink);
    assert_eq!(ready.len(), 3, "no ready mail twice");

    let api = &sys.api;
    for w in &waiting {
        let mine: Vec<&String> = ready.iter().filter(|m| m.contains(&w.email)).collect();
        assert_eq!(mine.len(), 1, "one ready mail to {}", w.email);
        // H9: the shelf period runs from the mail's sending (its Date header) + 7 days.
        // The branches' calendars are the default (open every day), so B2 moves nothing.
        let sent_at = mail_date(mine[0]).expect("a Date header");
        let sent_on = format_date(local_date(parse_instant(&sent_at).unwrap()));
        let until = days_after(&sent_on, 7);
        let h = ready_hold(api, &w.token).await;
        assert_eq!(h["hold_id"].as_str(), Some(w.hold_id.as_str()));
        assert_eq!(h["ready_until"].as_str(), Some(until.as_str()), "{h}");
        assert!(
            until > days_after(&w.shelved_on, 7),
            "the shelf clock starts at the sending ({sent_on}), not at the arrival ({})",
            w.shelved_on
        );
        // The mail promises the same date the hold keeps.
        let (y, m, d) = (&until[..4], &until[5..7], &until[8..10]);
        let promised = format!(
            "お取り置き期限：{y}年{}月{}日",
            m.trim_start_matches('0'),
            d.trim_start_matches('0')
        );
        assert!(mine[0].contains(&promised), "{promised} in {}", mine[0]);
        // The desk's hold shelf records the same sending time.
        let (s, v) = api
            .call(
                "GET",
                &format!("/api/v1/branches/{}/hold-shelf", w.branch),
                Some(&staff),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let entry = v
            .as_array()
            .and_then(|a| a.iter().find(|e| e["hold_id"] == w.hold_id.as_str()))
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(
            entry["mail_sent_at"].as_str().map(|t| &t[..19]),
            Some(&sent_at[..19]),
            "{v}"
        );
        // H8: once the mail is out, the item is lent.
        let (s, v) = checkout(api, &staff, w.branch, &w.card, &w.barcode).await;
        assert_eq!(s, 201, "{v}");
    }
}
