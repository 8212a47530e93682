//! The hold mails of rule N1 (issue 4), from circulation's hold events on a real bus to a
//! real SMTP server (the aiosmtpd sink), with titles from the real catalog service (SQLite,
//! gRPC on a loopback port): each mail's subject and text, the ready mail's keep-until
//! date (H9, B2) from its sending time on a test clock, `MailSent` with the hold id and the
//! sending time (N2), no mail where none is due (H4, H10), duplicates mailed once, and a
//! catalog that does not answer. Every body runs on PostgreSQL and on SQLite.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kitsuki_circulation::domain::calendar::{BranchCalendar, LibraryCalendar};
use kitsuki_circulation::domain::shelf::shelf_last_day;
use kitsuki_notification::{
    DeliveryRow, GrpcTitles, MailTransport, Notifier, Recorded, TitleDirectory,
};
use kitsuki_platform::bus::{Event, MemoryBus, NatsBus, SharedBus};
use kitsuki_platform::clock::{TestClock, parse_instant};
use kitsuki_platform::testing;
use kitsuki_proto::Branch;
use kitsuki_proto::events as ev;
use time::macros::{date, datetime};

on_both_backends!(multi_thread(2);
    every_hold_mail_reaches_the_smtp_server_with_its_title_and_pickup_branch,
    the_ready_mail_keeps_the_item_until_the_pickup_branch_s_next_open_day,
    the_ready_mail_counts_the_week_from_its_sending_not_from_the_event,
    a_notifier_without_the_closed_days_never_states_an_earlier_date_than_circulation,
    no_receipt_unless_asked_and_no_mail_for_the_patron_s_own_cancellation,
    a_hold_event_delivered_twice_is_mailed_once,
    a_catalog_that_does_not_answer_delays_the_mail_then_it_goes_without_the_title,
);

const CARD: &str = "1234567";
const ADDRESS: &str = "hanako@example.jp";
const TITLE: &str = "ノルウェイの森 上";
const AUTHOR: &str = "村上 春樹";
/// The book's statement of responsibility, and its creators as the mails name them.
const RESPONSIBILITY: &str = "村上 春樹 [著]";
const CREATORS: &str = "村上春樹 著";

/// The delivery of `event` once it is sent.
async fn sent(n: &Notifier, event: &Event) -> DeliveryRow {
    wait_for("the mail to be sent", || async {
        n.deliveries_of_event(&event.id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.status == "sent")
    })
    .await
}

/// The mails in the sink, parsed, by subject; each subject must come once.
fn mails_by_subject(dir: &std::path::Path) -> BTreeMap<String, mime::Mail> {
    let mut by_subject = BTreeMap::new();
    for (name, raw) in mails_in(dir) {
        let mail = mime::parse(&raw);
        let subject = mail.header("Subject").expect("a subject").to_string();
        assert_eq!(envelope_recipients(dir, &name), [ADDRESS]);
        assert!(
            by_subject.insert(subject.clone(), mail).is_none(),
            "one mail with the subject {subject}"
        );
    }
    by_subject
}

/// Rules N1, H5, H8, H9, B1: every hold mail, from events on NATS JetStream (the durable
/// consumer filtered on `circulation.*.hold.*`) to the SMTP server, with the subject of
/// the guide, the title as the catalog has it, and the pickup branch by name; the ready
/// mail with its keep-until date and its `MailSent`.
async fn every_hold_mail_reaches_the_smtp_server_with_its_title_and_pickup_branch(
    backend: Backend,
) {
    let catalog = CatalogServer::start().await;
    let title_id = catalog.add_book_by(TITLE, AUTHOR, RESPONSIBILITY).await;
    let sink_dir = temp_dir("sink");
    let sink = Sink::start(free_port(), &sink_dir).await;
    let clock = Arc::new(TestClock::new());
    // Wednesday 1 April 2026, 10:00 in Kitsuki.
    clock.set(datetime!(2026-04-01 10:00 +09:00));
    let db = fresh_db(backend).await;
    let n = notifier_with_clock(
        db.clone(),
        config(MailTransport::Smtp { url: sink.url() }),
        FixedContacts::new().with(CARD, ADDRESS),
        clock.clone(),
    )
    .await
    .with_titles(catalog.titles());
    let nats = NatsBus::connect_within(
        &testing::nats_url(),
        &testing::unique_prefix(),
        Duration::from_secs(10),
    )
    .await
    .expect("the test NATS server");
    let bus: SharedBus = Arc::new(nats.clone());
    let stop = run(&n, bus.clone());

    let placed = hold_event(
        "placed",
        ev::HoldEvent {
            receipt_mail: true,
            ..hold(CARD, &title_id, "ota")
        },
    );
    let confirmed = hold_event("confirmed", hold(CARD, &title_id, "ota"));
    let ready_hold = hold(CARD, &title_id, "ota");
    let ready = hold_event(
        "ready_to_notify",
        ev::HoldEvent {
            barcode: "OT-0001".into(),
            ready_until: "2026-04-08".into(),
            ..ready_hold.clone()
        },
    );
    let expired = hold_event("expired", hold(CARD, &title_id, "ota"));
    let rejected = hold_event(
        "rejected",
        ev::HoldEvent {
            reason: "所蔵資料の調査中のため".into(),
            ..hold(CARD, &title_id, "ota")
        },
    );
    let cancelled = hold_event(
        "cancelled",
        ev::HoldEvent {
            reason: "資料破損のため".into(),
            by_library: true,
            ..hold(CARD, &title_id, "ota")
        },
    );
    let events = [&placed, &confirmed, &ready, &expired, &rejected, &cancelled];
    for e in events {
        bus.publish(e).await.expect("publish");
    }
    let mut rows = Vec::new();
    for e in events {
        rows.push(sent(&n, e).await);
    }

    let mails = mails_by_subject(&sink_dir);
    let subjects: Vec<&str> = mails.keys().map(String::as_str).collect();
    let mut expected = vec![
        "仮予約受付け内容のお知らせ",
        "予約確定のお知らせ",
        "資料について用意ができました",
        "お取り置き期間終了のお知らせ",
        "予約をお受けできませんでした",
        "予約取消のお知らせ",
    ];
    expected.sort();
    assert_eq!(subjects, expected, "six mails, one of each");
    for (subject, mail) in &mails {
        assert_eq!(mail.header("To"), Some(ADDRESS));
        assert!(
            mail.body
                .contains(&format!("\n　資料名：{TITLE}\n　著者名：{CREATORS}\n")),
            "{subject}: {}",
            mail.body
        );
        assert!(
            mail.body.contains("\n　受取館：大田図書室\n"),
            "{subject}: {}",
            mail.body
        );
        assert!(
            mail.body
                .starts_with("杵築 花子 様\n\n杵築市立図書館です。\n")
        );
        assert!(
            mail.body
                .contains("図書館からパスワードをお尋ねすることは絶対にありません")
        );
    }
    let receipt = &mails["仮予約受付け内容のお知らせ"];
    assert!(
        receipt
            .body
            .contains("このメールではまだ予約は確定しておりません"),
        "{}",
        receipt.body
    );
    let ready_mail = &mails["資料について用意ができました"];
    assert!(
        ready_mail
            .body
            .contains("\n　お取り置き期限：2026年4月8日（水）まで\n"),
        "{}",
        ready_mail.body
    );
    assert!(
        mails["予約をお受けできませんでした"]
            .body
            .contains("\n　理由：所蔵資料の調査中のため\n")
    );
    assert!(
        mails["予約取消のお知らせ"]
            .body
            .contains("\n　理由：資料破損のため\n")
    );

    // The delivery log: one row per mail, the template names that travel in MailSent.
    let templates: Vec<&str> = rows.iter().map(|r| r.template.as_str()).collect();
    assert_eq!(
        templates,
        [
            "hold_receipt",
            "hold_confirmed",
            "hold_ready",
            "hold_expired",
            "hold_rejected",
            "hold_cancelled"
        ]
    );
    // N2, H9: the ready mail's MailSent names the hold and the sending time.
    let mail_sent = mail_sent_in_outbox(&db).await;
    assert_eq!(mail_sent.len(), 6);
    let ready_sent = mail_sent
        .iter()
        .find(|m| m.template == "hold_ready")
        .expect("MailSent of the ready mail");
    assert_eq!(ready_sent.hold_id, ready_hold.hold_id);
    assert_eq!(ready_sent.cause_event_id, ready.id);
    assert_eq!(ready_sent.sent_at, "2026-04-01T01:00:00.000000Z");
    // One MailSent per mail (in the order they were sent, which need not be the events').
    for (e, row) in events.iter().zip(&rows) {
        let of_event: Vec<&ev::MailSent> = mail_sent
            .iter()
            .filter(|m| m.cause_event_id == e.id)
            .collect();
        assert_eq!(of_event.len(), 1, "{}", row.template);
        assert_eq!(of_event[0].template, row.template);
        assert!(of_event[0].hold_id.starts_with("hold-"));
    }

    stop.trigger();
    nats.delete_stream().await.expect("delete the test stream");
}

/// Rules H9 and B2: the item is kept until the seventh day after the day the ready mail
/// is sent, moved past the pickup branch's closed days (configured); another branch's
/// closed days do not matter. The date is the one circulation computes from `MailSent`.
async fn the_ready_mail_keeps_the_item_until_the_pickup_branch_s_next_open_day(backend: Backend) {
    let catalog = CatalogServer::start().await;
    let title_id = catalog.add_book(TITLE, AUTHOR).await;
    let sink_dir = temp_dir("sink");
    let sink = Sink::start(free_port(), &sink_dir).await;
    let clock = Arc::new(TestClock::new());
    clock.set(datetime!(2026-04-01 18:30 +09:00));
    // Yamaga is closed on Wednesday 8 April (the seventh day) and Thursday 9 April.
    let calendars = LibraryCalendar::open_every_day().with_branch(
        Branch::Yamaga,
        BranchCalendar::open_every_day()
            .with_closed_range(date!(2026 - 04 - 08), date!(2026 - 04 - 09)),
    );
    let mut cfg = config(MailTransport::Smtp { url: sink.url() });
    cfg.calendars = calendars.clone();
    let db = fresh_db(backend).await;
    let n = notifier_with_clock(
        db.clone(),
        cfg,
        FixedContacts::new().with(CARD, ADDRESS),
        clock.clone(),
    )
    .await
    .with_titles(catalog.titles());
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());

    let at_yamaga = hold_event("ready_to_notify", hold(CARD, &title_id, "yamaga"));
    bus.publish(&at_yamaga).await.unwrap();
    let row = sent(&n, &at_yamaga).await;
    let mail = mime::parse(&mails_in(&sink_dir)[0].1);
    assert_eq!(mail.header("Subject"), Some("資料について用意ができました"));
    assert!(
        mail.body
            .contains("\n　受取館：山香図書室\n　お取り置き期限：2026年4月10日（金）まで\n"),
        "{}",
        mail.body
    );
    assert!(
        row.params.contains(r#""ready_until":"2026-04-10""#),
        "{}",
        row.params
    );

    let at_kitsuki = hold_event("ready_to_notify", hold(CARD, &title_id, "kitsuki"));
    bus.publish(&at_kitsuki).await.unwrap();
    sent(&n, &at_kitsuki).await;
    let mail = mime::parse(&mails_in(&sink_dir)[1].1);
    assert!(
        mail.body
            .contains("\n　受取館：杵築市立図書館\n　お取り置き期限：2026年4月8日（水）まで\n"),
        "{}",
        mail.body
    );

    // Circulation starts the shelf clock from MailSent: the same calendars give it the
    // date the patron was told.
    let mail_sent = mail_sent_in_outbox(&db).await;
    assert_eq!(mail_sent.len(), 2);
    for (m, (branch, told)) in mail_sent.iter().zip([
        (Branch::Yamaga, date!(2026 - 04 - 10)),
        (Branch::Kitsuki, date!(2026 - 04 - 08)),
    ]) {
        assert_eq!(m.sent_at, "2026-04-01T09:30:00.000000Z");
        assert_eq!(m.template, "hold_ready");
        let sent_at = parse_instant(&m.sent_at).unwrap();
        assert_eq!(shelf_last_day(&calendars, branch, sent_at), Ok(told));
    }
    stop.trigger();
}

/// Rules H9 and N2: the week runs from the sending of the ready mail. A mail that could
/// not go out on the day of the event (the mail server was down) and goes out two days
/// later keeps the item until the seventh day after that, and its `MailSent` carries the
/// later time, which starts circulation's clock.
async fn the_ready_mail_counts_the_week_from_its_sending_not_from_the_event(backend: Backend) {
    let catalog = CatalogServer::start().await;
    let title_id = catalog.add_book(TITLE, AUTHOR).await;
    let port = free_port();
    let sink_dir = temp_dir("sink");
    let clock = Arc::new(TestClock::new());
    clock.set(datetime!(2026-04-01 10:00 +09:00));
    let db = fresh_db(backend).await;
    let n = notifier_with_clock(
        db.clone(),
        config(MailTransport::Smtp {
            url: format!("smtp://127.0.0.1:{port}"),
        }),
        FixedContacts::new().with(CARD, ADDRESS),
        clock.clone(),
    )
    .await
    .with_titles(catalog.titles());
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());

    let the_hold = hold(CARD, &title_id, "ota");
    // Circulation's date for a mail sent on the event's day.
    let ready = hold_event(
        "ready_to_notify",
        ev::HoldEvent {
            ready_until: "2026-04-08".into(),
            ..the_hold.clone()
        },
    );
    bus.publish(&ready).await.unwrap();
    wait_for("a failed attempt", || async {
        n.deliveries_of_event(&ready.id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.attempts >= 1 && !d.last_error.is_empty())
    })
    .await;
    assert!(mail_sent_in_outbox(&db).await.is_empty());

    // The server is back; it is Friday 3 April, 9:00, when the retry comes due.
    let _sink = Sink::start(port, &sink_dir).await;
    clock.set(datetime!(2026-04-03 09:00 +09:00));
    let row = sent(&n, &ready).await;
    assert_eq!(row.sent_at.as_deref(), Some("2026-04-03T00:00:00.000000Z"));
    let mails = mails_in(&sink_dir);
    assert_eq!(mails.len(), 1);
    let mail = mime::parse(&mails[0].1);
    assert!(
        mail.body
            .contains("\n　お取り置き期限：2026年4月10日（金）まで\n"),
        "{}",
        mail.body
    );
    assert!(
        mail.header("Date").unwrap().contains("3 Apr 2026 00:00:00"),
        "the mail is dated by its sending: {:?}",
        mail.header("Date")
    );
    let mail_sent = mail_sent_in_outbox(&db).await;
    assert_eq!(mail_sent.len(), 1);
    assert_eq!(mail_sent[0].hold_id, the_hold.hold_id);
    assert_eq!(mail_sent[0].sent_at, "2026-04-03T00:00:00.000000Z");
    stop.trigger();
}

/// Rules H9 and B2 where the configurations disagree: circulation knows that Ota is
/// closed on the seventh day and says so in the event's `ready_until`; a notifier not given
/// that calendar (open every day) still tells the patron circulation's later date, never
/// an earlier one.
async fn a_notifier_without_the_closed_days_never_states_an_earlier_date_than_circulation(
    backend: Backend,
) {
    let catalog = CatalogServer::start().await;
    let title_id = catalog.add_book(TITLE, AUTHOR).await;
    let sink_dir = temp_dir("sink");
    let sink = Sink::start(free_port(), &sink_dir).await;
    let clock = Arc::new(TestClock::new());
    clock.set(datetime!(2026-04-01 10:00 +09:00));
    let n = notifier_with_clock(
        fresh_db(backend).await,
        config(MailTransport::Smtp { url: sink.url() }),
        FixedContacts::new().with(CARD, ADDRESS),
        clock.clone(),
    )
    .await
    .with_titles(catalog.titles());
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());
    let ready = hold_event(
        "ready_to_notify",
        ev::HoldEvent {
            ready_until: "2026-04-09".into(),
            ..hold(CARD, &title_id, "ota")
        },
    );
    bus.publish(&ready).await.unwrap();
    let row = sent(&n, &ready).await;
    let mail = mime::parse(&mails_in(&sink_dir)[0].1);
    assert!(
        mail.body
            .contains("\n　お取り置き期限：2026年4月9日（木）まで\n"),
        "{}",
        mail.body
    );
    assert!(
        row.params.contains(r#""ready_until":"2026-04-09""#),
        "{}",
        row.params
    );
    stop.trigger();
}

/// Rules H4, H5 and H10: a hold placed without asking for the receipt mail (「希望しない」)
/// and a hold the patron cancelled themselves call for no mail; the event is acknowledged
/// and the next one is handled.
async fn no_receipt_unless_asked_and_no_mail_for_the_patron_s_own_cancellation(backend: Backend) {
    let catalog = CatalogServer::start().await;
    let title_id = catalog.add_book(TITLE, AUTHOR).await;
    let sink_dir = temp_dir("sink");
    let sink = Sink::start(free_port(), &sink_dir).await;
    let contacts = FixedContacts::new().with(CARD, ADDRESS);
    let db = fresh_db(backend).await;
    let n = notifier(
        db.clone(),
        config(MailTransport::Smtp { url: sink.url() }),
        contacts.clone(),
    )
    .await
    .with_titles(catalog.titles());

    let not_asked = hold_event("placed", hold(CARD, &title_id, "kitsuki"));
    let by_patron = hold_event("cancelled", hold(CARD, &title_id, "kitsuki"));
    // Staff cancelling at the patron's request may note why; it is still the patron's.
    let at_counter = hold_event(
        "cancelled",
        ev::HoldEvent {
            reason: "ご本人のお申し出".into(),
            ..hold(CARD, &title_id, "yamaga")
        },
    );
    let consumer = n
        .consumer_specs()
        .into_iter()
        .find(|s| s.filter == "circulation.*.hold.*")
        .expect("a consumer of hold events")
        .durable;
    for e in [&not_asked, &by_patron, &at_counter] {
        assert_eq!(
            n.record_event(&consumer, e).await.unwrap(),
            Recorded::Ignored
        );
    }

    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());
    let asked = hold_event(
        "placed",
        ev::HoldEvent {
            receipt_mail: true,
            ..hold(CARD, &title_id, "kitsuki")
        },
    );
    for e in [&not_asked, &by_patron, &at_counter, &asked] {
        bus.publish(e).await.unwrap();
    }
    // Events of one consumer come in order: once the last is mailed, the others were seen.
    sent(&n, &asked).await;
    let mails = mails_in(&sink_dir);
    assert_eq!(mails.len(), 1, "only the receipt that was asked for");
    assert_eq!(
        mime::parse(&mails[0].1).header("Subject"),
        Some("仮予約受付け内容のお知らせ")
    );
    for e in [&not_asked, &by_patron, &at_counter] {
        assert!(n.deliveries_of_event(&e.id).await.unwrap().is_empty());
    }
    assert_eq!(n.list_deliveries(100).await.unwrap().len(), 1);
    assert_eq!(mail_sent_in_outbox(&db).await.len(), 1);
    assert_eq!(
        contacts.calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no address was asked for the mails not sent"
    );
    stop.trigger();
}

/// "Nothing doubled": a ready event recorded, then delivered again (the consumer died
/// before its ack) and published again with the same id, makes one mail and one
/// `MailSent` (a second would restart the hold-shelf clock).
async fn a_hold_event_delivered_twice_is_mailed_once(backend: Backend) {
    let catalog = CatalogServer::start().await;
    let title_id = catalog.add_book(TITLE, AUTHOR).await;
    let sink_dir = temp_dir("sink");
    let sink = Sink::start(free_port(), &sink_dir).await;
    let db = fresh_db(backend).await;
    let n = notifier(
        db.clone(),
        config(MailTransport::Smtp { url: sink.url() }),
        FixedContacts::new().with(CARD, ADDRESS),
    )
    .await
    .with_titles(catalog.titles());
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let ready = hold_event("ready_to_notify", hold(CARD, &title_id, "ota"));
    let consumer = n
        .consumer_specs()
        .into_iter()
        .find(|s| s.filter == "circulation.*.hold.*")
        .unwrap()
        .durable;
    assert_eq!(
        n.record_event(&consumer, &ready).await.unwrap(),
        Recorded::Queued(1)
    );
    bus.publish(&ready).await.unwrap();
    assert!(bus.publish(&ready).await.unwrap().duplicate);

    let stop = run(&n, bus.clone());
    let later = hold_event("confirmed", hold(CARD, &title_id, "ota"));
    bus.publish(&later).await.unwrap();
    sent(&n, &later).await;
    sent(&n, &ready).await;
    assert_eq!(
        n.record_event(&consumer, &ready).await.unwrap(),
        Recorded::Duplicate
    );
    assert_eq!(n.deliveries_of_event(&ready.id).await.unwrap().len(), 1);
    let mails = mails_by_subject(&sink_dir);
    assert_eq!(mails.len(), 2, "one ready mail and one confirmation");
    assert!(mails.contains_key("資料について用意ができました"));
    let ready_sent: Vec<ev::MailSent> = mail_sent_in_outbox(&db)
        .await
        .into_iter()
        .filter(|m| m.template == "hold_ready")
        .collect();
    assert_eq!(ready_sent.len(), 1);
    stop.trigger();
}

/// N2 over N1: a catalog that does not answer delays a hold mail for a few attempts, then
/// the mail goes without its title (pointing to the patron's page) rather than not at
/// all; a title the catalog does not know goes without it at once.
async fn a_catalog_that_does_not_answer_delays_the_mail_then_it_goes_without_the_title(
    backend: Backend,
) {
    let sink_dir = temp_dir("sink");
    let sink = Sink::start(free_port(), &sink_dir).await;
    let mut cfg = config(MailTransport::Smtp { url: sink.url() });
    cfg.title_lookup_attempts = 3;
    let down = GrpcTitles::connect_lazy(&format!("http://127.0.0.1:{}", free_port())).unwrap();
    let n = notifier(
        fresh_db(backend).await,
        cfg,
        FixedContacts::new().with(CARD, ADDRESS),
    )
    .await
    .with_titles(Arc::new(down));
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());
    let some_title = "0190f0e0-0000-7000-8000-00000000abcd";
    let confirmed = hold_event("confirmed", hold(CARD, some_title, "yamaga"));
    bus.publish(&confirmed).await.unwrap();
    let row = sent(&n, &confirmed).await;
    assert_eq!(row.attempts, 3);
    let mail = mime::parse(&mails_in(&sink_dir)[0].1);
    assert_eq!(mail.header("Subject"), Some("予約確定のお知らせ"));
    assert!(
        mail.body.contains(
            "\n　資料名：（Webサービスの「ご利用状況参照」でご確認ください）\n　受取館：山香図書室\n"
        ),
        "{}",
        mail.body
    );
    stop.trigger();

    // The real catalog, asked for a title it does not have.
    let catalog = CatalogServer::start().await;
    let n = notifier(
        fresh_db(backend).await,
        config(MailTransport::Smtp { url: sink.url() }),
        FixedContacts::new().with(CARD, ADDRESS),
    )
    .await
    .with_titles(catalog.titles());
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());
    let expired = hold_event("expired", hold(CARD, some_title, "ota"));
    bus.publish(&expired).await.unwrap();
    let row = sent(&n, &expired).await;
    assert_eq!(row.attempts, 1);
    stop.trigger();
}

/// `GrpcTitles` against the real catalog: a title it has, one it does not have (or an id
/// that is not one), and a catalog nobody serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_titles_reads_the_catalog_and_tells_unknown_from_unreachable() {
    let catalog = CatalogServer::start().await;
    let id = catalog.add_book(TITLE, AUTHOR).await;
    let titles = catalog.titles();
    let t = titles.title(&id).await.unwrap().expect("the title");
    // Without a statement, the creators are the heading written as a name.
    assert_eq!(
        (t.title_id.as_str(), t.title.as_str(), t.creators.as_str()),
        (id.as_str(), TITLE, "村上春樹")
    );
    let by = catalog.add_book_by(TITLE, AUTHOR, RESPONSIBILITY).await;
    let t = titles.title(&by).await.unwrap().expect("the title");
    assert_eq!(t.creators, CREATORS);
    assert_eq!(
        titles
            .title("0190f0e0-0000-7000-8000-00000000abcd")
            .await
            .unwrap(),
        None
    );
    assert_eq!(titles.title("not-a-title-id").await.unwrap(), None);

    let nobody = GrpcTitles::connect_lazy(&format!("http://127.0.0.1:{}", free_port())).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), nobody.title(&id))
        .await
        .expect("an answer")
        .unwrap_err();
    assert_eq!(err.code, kitsuki_proto::ErrorCode::Unavailable);
}
