//! Rule B2 from the calendar file (`KITSUKI_CALENDAR_FILE`) across processes: the three
//! circulation instances and the notification service, started as separate processes
//! ([`common::system`]) with the same file, move a due date (L1) and the last day on the
//! hold shelf (H9) past the closed days it sets, each branch by its own calendar, and the
//! ready mail promises the date the hold keeps.
//!
//! The ready mail is made to leave a day after the hold reached the shelf (the SMTP server
//! is down meanwhile), so that its keep-until date is the notification service's own
//! computation: on the day the hold reached the shelf, circulation's floor for the date
//! falls on an open day, and only a notifier that read the file moves the later date past
//! the closed run. The clocks are pinned (`now` of `POST /api/v1/test/clock`), so the day
//! of each step is the test's, not the wall clock's.
//!
//! And a process given a file it cannot read or that is invalid refuses to start, with the
//! parser's message.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::system::{
    Api, READY_MAIL, System, checkout_when_known, counter_patron, hold_of, login, mails_matching,
    title_with_copies, web_patron,
};
use common::{SmtpSink, binary, eventually, mail_date, temp_dir};
use kitsuki_platform::clock::{Clock, SystemClock, format_date, local_date, parse_instant};
use serde_json::{Value, json};

/// `date` (`YYYY-MM-DD`) plus `days`.
fn day(date: &str, days: u32) -> String {
    let mut d = local_date(parse_instant(&format!("{date}T03:00:00Z")).unwrap());
    for _ in 0..days {
        d = d.next_day().unwrap();
    }
    format_date(d)
}

/// The calendar file's name of `date`'s weekday (`monday` …).
fn weekday(date: &str) -> String {
    local_date(parse_instant(&format!("{date}T03:00:00Z")).unwrap())
        .weekday()
        .to_string()
        .to_lowercase()
}

/// A date as the ready mail writes it: `2027年1月4日`.
fn japanese(date: &str) -> String {
    let (y, m, d) = (&date[..4], &date[5..7], &date[8..10]);
    format!(
        "{y}年{}月{}日",
        m.trim_start_matches('0'),
        d.trim_start_matches('0')
    )
}

async fn checkin(api: &Api, staff: &str, branch: &str, barcode: &str) -> Value {
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/branches/{branch}/checkins"),
            Some(staff),
            Some(json!({ "barcode": barcode })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// How many ready mails to Ōta's shelf the notification service has counted as failed
/// attempts (its `/metrics`): an attempt that has failed is over, so nothing is on its way
/// to the SMTP server that could still leave today.
async fn failed_ready_mails(http: &reqwest::Client, notification: &str) -> u64 {
    let Ok(r) = http.get(format!("{notification}/metrics")).send().await else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.starts_with("kitsuki_mail_failed_total{")
                && l.contains("template=\"hold_ready\"")
                && l.contains("branch=\"ota\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circulation_and_notification_move_dates_past_the_closed_days_of_one_file_b2() {
    // The day the story starts (P): two days ahead of the library's today, so that pinning
    // every clock there only moves them forward. Times are 10:00 in Kitsuki.
    let today = format_date(local_date(SystemClock.now()));
    let p = day(&today, 2);
    // Kitsuki lends on P: the loan period ends on P+14, closed by date, and P+15 is its
    // weekly closing day, so the due date is P+16 (a run of a date and a weekly closing).
    // Ōta is the pickup branch: the ready mail leaves on P+1, the week ends on P+8, and
    // Ōta is closed P+8..P+9 (a range) and on P+10's weekday, so the item is kept until
    // P+11. On P itself the week would end on P+7, open: circulation's floor for the date
    // says P+7, so P+11 in the mail is the notifier's own reading of the file. Yamaga is
    // not listed: open every day.
    let kitsuki_closed_weekday = weekday(&day(&p, 15));
    let ota_closed_weekday = weekday(&day(&p, 10));
    assert_ne!(kitsuki_closed_weekday, weekday(&p));
    let calendar = json!({
        "kitsuki": {
            "closed_weekdays": [kitsuki_closed_weekday],
            "closed_dates": [day(&p, 14)],
        },
        "ota": {
            "closed_weekdays": [ota_closed_weekday],
            "closed_dates": [format!("{}/{}", day(&p, 8), day(&p, 9))],
        },
    });
    let config = temp_dir("calendar-file-config");
    let file = config.join("calendar.json");
    std::fs::write(&file, serde_json::to_string_pretty(&calendar).unwrap()).unwrap();

    let mut sys = System::start_with(
        "calendar-file",
        &[("KITSUKI_CALENDAR_FILE", file.to_string_lossy().to_string())],
    )
    .await;
    let pinned = format!("{p}T01:00:00Z");
    let (s, v) = sys
        .api
        .call(
            "POST",
            "/api/v1/test/clock",
            None,
            Some(json!({ "now": pinned })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let staff = sys.staff().await;
    let api = &sys.api;

    // One copy, at Kitsuki.
    let title_id =
        title_with_copies(api, &staff, "草枕", "夏目漱石", &[("CAL-1", "kitsuki")]).await;
    let borrower = counter_patron(api, &staff, "借りる 人").await;
    let (holder, holder_token, holder_pw) = web_patron(
        api,
        &sys.sink,
        &staff,
        "予約 花子",
        "calendar-hanako@example.jp",
    )
    .await;

    // L1, B2: lent at Kitsuki on P, due on Kitsuki's next open day after P+14.
    let loan = checkout_when_known(api, &staff, "kitsuki", &borrower, "CAL-1").await;
    assert_eq!(
        loan["due_date"].as_str(),
        Some(day(&p, 16).as_str()),
        "{loan}"
    );

    // A web hold with pickup at Ōta, once the catalog knows no copy is on a shelf (H1).
    let hold = eventually(
        "a web hold accepted once no copy is on a shelf",
        Duration::from_secs(30),
        || async {
            let (s, v) = api
                .call(
                    "POST",
                    "/api/v1/me/holds",
                    Some(&holder_token),
                    Some(json!({"title_id": title_id, "pickup_branch": "ota", "receipt_mail": false})),
                )
                .await;
            (s == 201).then_some(v)
        },
    )
    .await;
    eventually("the hold confirmed", Duration::from_secs(30), || async {
        (hold_of(api, &holder_token).await["status"] == "confirmed").then_some(())
    })
    .await;
    // Every mail so far (verification, confirmation) delivered before the SMTP server
    // goes down: the only one that fails is the ready mail.
    sys.settled_deliveries().await;
    sys.sink.stop();

    // Returned at Kitsuki, into transit to Ōta (H7), onto Ōta's shelf on P.
    let api = &sys.api;
    let v = checkin(api, &staff, "kitsuki", "CAL-1").await;
    assert_eq!(v["to_branch"].as_str(), Some("ota"), "{v}");
    let v = checkin(api, &staff, "ota", "CAL-1").await;
    assert_eq!(v["routing"].as_str(), Some("hold_shelf"), "{v}");
    assert_eq!(v["hold_id"], hold["hold_id"], "{v}");
    // The ready mail's first attempt fails; its retry is due a moment after P, and the
    // pinned clocks stay at P until they are moved.
    let http = api.http.clone();
    let notification = sys.notification.url.clone();
    eventually(
        "the ready mail's attempt failed with the SMTP server down",
        Duration::from_secs(60),
        || async { (failed_ready_mails(&http, &notification).await >= 1).then_some(()) },
    )
    .await;
    let port = sys.sink.port;
    sys.sink = SmtpSink::start(port, &sys.dir.join("smtp"));
    // A day passes: the retry goes out on P+1.
    let api = &sys.api;
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/test/clock",
            None,
            Some(json!({"advance_days": 1})),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // H8, H9, B2: the mail, sent on P+1, keeps the item until Ōta's next open day after
    // P+8 — by the notifier's calendar…
    let ready = mails_matching(&sys.sink, READY_MAIL, 1).await;
    let sent_at = mail_date(&ready[0]).expect("a Date header");
    assert_eq!(
        format_date(local_date(parse_instant(&sent_at).unwrap())),
        day(&p, 1),
        "the ready mail left a day after the hold reached the shelf"
    );
    let until = day(&p, 11);
    let promised = format!("お取り置き期限：{}", japanese(&until));
    assert!(ready[0].contains(&promised), "{promised} in {}", ready[0]);
    // …and the hold keeps it until the same day, by circulation's (sessions idled out over
    // the day: log in again).
    let holder_token = login(
        api,
        "/api/v1/session",
        json!({"card_number": holder, "password": holder_pw}),
    )
    .await;
    let h = eventually("the hold ready", Duration::from_secs(30), || async {
        let h = hold_of(api, &holder_token).await;
        (h["status"] == "ready").then_some(h)
    })
    .await;
    assert_eq!(h["ready_until"].as_str(), Some(until.as_str()), "{h}");

    // L1, B2: lent at Ōta on P+1, due P+15 — the lending branch's calendar: Kitsuki, the
    // item's home, is closed on that weekday, Ōta is not.
    let staff = sys.staff().await;
    let loan = checkout_when_known(api, &staff, "ota", &holder, "CAL-1").await;
    assert_eq!(
        loan["due_date"].as_str(),
        Some(day(&p, 15).as_str()),
        "{loan}"
    );
}

/// Runs `kitsuki ARGS` with `KITSUKI_CALENDAR_FILE=file` until it exits (at most 30 s);
/// its exit status and what it printed on stderr.
fn run_with_calendar(args: &[&str], file: &std::path::Path) -> (std::process::ExitStatus, String) {
    let dir = temp_dir("calendar-file-refused");
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(&dir)
        .env("KITSUKI_CALENDAR_FILE", file)
        .env("KITSUKI_DATA_DIR", &dir)
        .env("KITSUKI_LOG", "warn")
        .env_remove("KITSUKI_LISTEN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kitsuki");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kitsuki {args:?} started despite the calendar file");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap())
}

#[test]
fn a_process_given_a_bad_calendar_file_refuses_to_start_with_the_parsers_message() {
    let dir = temp_dir("calendar-file-bad");
    let invalid = dir.join("calendar.json");
    std::fs::write(
        &invalid,
        r#"{"kitsuki": {"closed_dates": ["2026-12-29/2027-01-03"]}, "ota": {"closed_dates": ["2027-02-30"]}}"#,
    )
    .unwrap();
    let missing = dir.join("no-such-calendar.json");
    // Required peers and stores are given but never reached: the calendar is read first.
    let roles: [&[&str]; 3] = [
        &[
            "circulation",
            "--branch",
            "ota",
            "--listen",
            "127.0.0.1:0",
            "--patron-url",
            "http://127.0.0.1:9",
            "--database-url",
            "sqlite://circulation.db",
            "--nats-url",
            "nats://127.0.0.1:9",
        ],
        &[
            "notification",
            "--listen",
            "127.0.0.1:0",
            "--patron-url",
            "http://127.0.0.1:9",
            "--catalog-url",
            "http://127.0.0.1:9",
            "--database-url",
            "sqlite://notification.db",
            "--nats-url",
            "nats://127.0.0.1:9",
        ],
        // The all-in-one.
        &["--listen", "127.0.0.1:0"],
    ];
    for args in roles {
        let (status, stderr) = run_with_calendar(args, &invalid);
        assert!(!status.success(), "{args:?}: {status:?}");
        assert!(
            stderr.contains(&format!(
                "the calendar file {} (KITSUKI_CALENDAR_FILE) is refused: calendar of ota: \"2027-02-30\" is not a date",
                invalid.display()
            )),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");

        let (status, stderr) = run_with_calendar(args, &missing);
        assert!(!status.success(), "{args:?}: {status:?}");
        assert!(
            stderr.contains(&format!(
                "cannot read the calendar file {} (KITSUKI_CALENDAR_FILE)",
                missing.display()
            )),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn the_shipped_example_calendar_files_are_valid_b2() {
    use kitsuki_circulation::domain::calendar::{LibraryCalendar, next_open_day};
    use kitsuki_proto::Branch;
    let root = env!("CARGO_MANIFEST_DIR");
    for path in ["k8s/base/calendar.json", "deploy/calendar.json"] {
        let text = std::fs::read_to_string(format!("{root}/{path}")).unwrap();
        let cals = LibraryCalendar::from_json(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        // The example's New Year closing, on every branch: 2027-01-04 is a Monday (closed
        // weekly in the example), so the run ends on the 5th.
        let new_year = local_date(parse_instant("2026-12-31T03:00:00Z").unwrap());
        for b in Branch::ALL {
            let open = next_open_day(cals.branch(b), new_year).unwrap();
            assert_eq!(format_date(open), "2027-01-05", "{path}: {b}");
        }
    }
}
