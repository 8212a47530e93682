//! The delivery log against real databases (every body on PostgreSQL and on SQLite), with
//! mail written as `.eml` files and events on the in-process bus: duplicates, files,
//! `MailSent` in the outbox, patrons without an address, a contact directory that is
//! down, two senders on one database, the gRPC delivery log, and `GrpcContacts` against a
//! gRPC patron service. Waits are deadlines.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use kitsuki_notification::{
    ContactDirectory, GrpcContacts, MAIL_SENT_SUBJECT, MailTransport, NotificationGrpc, Recorded,
};
use kitsuki_platform::bus::{ConsumerSpec, Event, MemoryBus, SharedBus};
use kitsuki_platform::clock::TestClock;
use kitsuki_proto::events as ev;
use kitsuki_proto::notification::ListDeliveriesRequest;
use kitsuki_proto::notification::notification_service_server::NotificationService;
use prost::Message;
use sqlx::Row;
use time::macros::datetime;

on_both_backends!(multi_thread(2);
    an_event_delivered_again_yields_one_delivery_and_one_mail,
    the_files_transport_writes_one_eml_per_mail,
    mail_sent_is_in_the_outbox_with_the_sending_time,
    a_patron_without_an_address_is_no_address_and_not_retried,
    a_contact_directory_that_is_down_delays_the_mail,
    two_senders_on_one_database_send_each_mail_once,
    the_delivery_log_lists_newest_first_over_grpc,
    events_without_mail_or_unusable_are_acknowledged_and_skipped,
    the_delivery_log_of_mails_done_goes_after_180_days_pending_ones_stay,
);

fn files(dir: &std::path::Path) -> MailTransport {
    MailTransport::Files {
        dir: dir.to_path_buf(),
    }
}

async fn sent(
    n: &kitsuki_notification::Notifier,
    event_id: &str,
) -> kitsuki_notification::DeliveryRow {
    wait_for("the mail to be sent", || async {
        n.deliveries_of_event(event_id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.status == "sent")
    })
    .await
}

/// "Nothing lost, nothing doubled": a consumer that recorded an event and died before
/// acknowledging it gets it again; the inbox makes the second time a no-op.
async fn an_event_delivered_again_yields_one_delivery_and_one_mail(backend: Backend) {
    let dir = temp_dir("outbox");
    let contacts = FixedContacts::new()
        .with("1234567", "a@example.jp")
        .with("7654321", "b@example.jp");
    let n = notifier(fresh_db(backend).await, config(files(&dir)), contacts).await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let event = email_changed("1234567");
    bus.publish(&event).await.unwrap();

    // A first consumer records the event and stops before its ack.
    let spec: ConsumerSpec = n.consumer_specs()[0].clone();
    {
        let mut sub = bus.subscribe(&spec).await.unwrap();
        let delivery = tokio::time::timeout(DEADLINE, sub.next())
            .await
            .expect("a delivery")
            .expect("open")
            .expect("ok");
        assert_eq!(
            n.record_event(&spec.durable, &delivery.event)
                .await
                .unwrap(),
            Recorded::Queued(1)
        );
    }
    // Published again with the same id: the bus keeps one.
    assert!(bus.publish(&event).await.unwrap().duplicate);

    let stop = run(&n, bus.clone());
    // Events of one consumer come in order, the redelivery first: once the later event
    // is handled, so is the redelivered one.
    let later = email_changed("7654321");
    bus.publish(&later).await.unwrap();
    sent(&n, &later.id).await;
    sent(&n, &event.id).await;
    assert_eq!(n.deliveries_of_event(&event.id).await.unwrap().len(), 1);
    assert_eq!(n.list_deliveries(100).await.unwrap().len(), 2);
    assert_eq!(mails_in(&dir).len(), 2, "one mail per event");
    assert_eq!(
        n.record_event(&spec.durable, &event).await.unwrap(),
        Recorded::Duplicate
    );
    stop.trigger();
}

/// API.md: without `KITSUKI_SMTP_URL`, mails are `.eml` files in the outbox folder, one
/// per mail, named by delivery id, never half-written.
async fn the_files_transport_writes_one_eml_per_mail(backend: Backend) {
    let dir = temp_dir("outbox");
    let contacts = FixedContacts::new()
        .with("1234567", "a@example.jp")
        .verifying("v-9", "1234567", "new@example.jp");
    let n = notifier(fresh_db(backend).await, config(files(&dir)), contacts).await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());
    let events = [
        verification_requested("1234567", "v-9", "tok-1", "2026-04-03T06:30:00Z"),
        email_changed("1234567"),
        reset_requested("1234567", "reset-2", "2026-04-01T00:30:00Z"),
    ];
    for e in &events {
        bus.publish(e).await.unwrap();
    }
    let mut rows = Vec::new();
    for e in &events {
        rows.push(sent(&n, &e.id).await);
    }
    let mails = mails_in(&dir);
    assert_eq!(mails.len(), 3);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".eml"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files stay: {leftovers:?}"
    );
    let expect = [
        (
            "new@example.jp",
            "メールアドレス確認のお願い",
            "http://localhost:8080/email/verify?token=tok-1",
        ),
        (
            "a@example.jp",
            "メールアドレス変更完了のお知らせ",
            "杵築市立図書館です。",
        ),
        (
            "a@example.jp",
            "パスワード再設定のご案内",
            "http://localhost:8080/password/reset?token=reset-2",
        ),
    ];
    for (row, (to, subject, text)) in rows.iter().zip(expect) {
        let raw = std::fs::read(dir.join(format!("{}.eml", row.delivery_id)))
            .expect("named by delivery id");
        let mail = mime::parse(&raw);
        assert_eq!(mail.header("To"), Some(to));
        assert_eq!(mail.header("Subject"), Some(subject));
        assert_eq!(row.subject, subject);
        assert!(mail.body.contains(text), "{}", mail.body);
        assert_eq!(
            mail.header("Message-ID"),
            Some(format!("<{}@city.kitsuki.lg.jp>", row.delivery_id).as_str())
        );
    }
    stop.trigger();
}

/// Rule N2 (and H9 in issue 4): the sending time is announced by `MailSent`, written in
/// the same transaction as the mark and relayed to the bus.
async fn mail_sent_is_in_the_outbox_with_the_sending_time(backend: Backend) {
    let dir = temp_dir("outbox");
    let clock = Arc::new(TestClock::new());
    clock.set(datetime!(2026-04-01 01:02:03.456789 UTC));
    let contacts = FixedContacts::new().verifying("v-1", "1234567", "new@example.jp");
    let db = fresh_db(backend).await;
    let n = notifier_with_clock(db.clone(), config(files(&dir)), contacts, clock.clone()).await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());
    let event = verification_requested("1234567", "v-1", "t", "2026-04-03T01:02:03Z");
    bus.publish(&event).await.unwrap();
    let row = sent(&n, &event.id).await;
    assert_eq!(row.sent_at.as_deref(), Some("2026-04-01T01:02:03.456789Z"));

    let stored = sqlx::query("SELECT event_id, payload, headers FROM outbox WHERE subject = $1")
        .bind(MAIL_SENT_SUBJECT)
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let payload: Vec<u8> = stored[0].try_get("payload").unwrap();
    let mail_sent = ev::MailSent::decode(payload.as_slice()).unwrap();
    assert_eq!(mail_sent.cause_event_id, event.id);
    assert_eq!(mail_sent.template, "email_verification");
    assert_eq!(mail_sent.sent_at, "2026-04-01T01:02:03.456789Z");
    assert_eq!(mail_sent.hold_id, "");
    let meta = mail_sent.meta.clone().unwrap();
    assert_eq!(
        meta.event_id,
        stored[0].try_get::<String, _>("event_id").unwrap()
    );
    let headers: String = stored[0].try_get("headers").unwrap();
    assert!(headers.contains("2026-04-01T01:02:03.456789Z"), "{headers}");

    // The service's relay publishes it.
    let mut watch = bus
        .subscribe(&ConsumerSpec::new("watch", "notification.>"))
        .await
        .unwrap();
    let published = tokio::time::timeout(DEADLINE, watch.next())
        .await
        .expect("MailSent on the bus")
        .unwrap()
        .unwrap();
    assert_eq!(published.event.subject, MAIL_SENT_SUBJECT);
    assert_eq!(
        ev::MailSent::decode(published.event.payload.as_slice()).unwrap(),
        mail_sent
    );
    stop.trigger();
}

/// A patron without an address (or a verification request that is no longer current)
/// ends as `no_address` after one look-up, and is not tried again.
async fn a_patron_without_an_address_is_no_address_and_not_retried(backend: Backend) {
    let dir = temp_dir("outbox");
    let contacts = FixedContacts::new().with("1234567", "a@example.jp");
    let n = notifier(
        fresh_db(backend).await,
        config(files(&dir)),
        contacts.clone(),
    )
    .await;
    let consumer = &n.consumer_specs()[0].durable;
    let unknown = email_changed("1111111");
    let superseded = verification_requested("1234567", "v-old", "t", "2026-04-03T00:00:00Z");
    for e in [&unknown, &superseded] {
        assert_eq!(
            n.record_event(consumer, e).await.unwrap(),
            Recorded::Queued(1)
        );
    }
    assert_eq!(n.send_due_once().await.unwrap(), 2);
    for e in [&unknown, &superseded] {
        let rows = n.deliveries_of_event(&e.id).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, "no_address");
        assert_eq!(rows[0].attempts, 1);
        assert!(rows[0].recipient.is_empty());
        assert!(
            !rows[0].params.contains("\"token\""),
            "settled rows keep no token"
        );
    }
    for _ in 0..3 {
        assert_eq!(
            n.send_due_once().await.unwrap(),
            0,
            "nothing is tried again"
        );
    }
    assert_eq!(contacts.calls.load(Ordering::SeqCst), 2);
    assert_eq!(n.pending_count().await.unwrap(), 0);
    assert!(mails_in(&dir).is_empty());
}

/// Patron-account not answering is a passing trouble: the delivery waits and is sent
/// once the directory answers.
async fn a_contact_directory_that_is_down_delays_the_mail(backend: Backend) {
    let dir = temp_dir("outbox");
    let contacts = FixedContacts::new().with("1234567", "a@example.jp");
    contacts.fail_next(2);
    let n = notifier(
        fresh_db(backend).await,
        config(files(&dir)),
        contacts.clone(),
    )
    .await;
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());
    let event = email_changed("1234567");
    bus.publish(&event).await.unwrap();
    let row = sent(&n, &event.id).await;
    assert_eq!(row.attempts, 3);
    assert_eq!(contacts.calls.load(Ordering::SeqCst), 3);
    assert_eq!(mails_in(&dir).len(), 1);
    stop.trigger();
}

/// Two sender processes on one database (replicas in a deployment): each delivery is
/// claimed by one of them, so each mail is written once.
async fn two_senders_on_one_database_send_each_mail_once(backend: Backend) {
    let dir = temp_dir("outbox");
    let db = fresh_db(backend).await;
    let contacts = FixedContacts::new();
    let mut events = Vec::new();
    for i in 0..12 {
        let card = format!("12345{i:02}");
        let _ = contacts.clone().with(&card, &format!("p{i}@example.jp"));
        events.push(email_changed(&card));
    }
    let cfg = config(files(&dir));
    let a = notifier(db.clone(), cfg.clone(), contacts.clone()).await;
    let b = notifier(db, cfg, contacts).await;
    let consumer = a.consumer_specs()[0].durable.clone();
    for e in &events {
        a.record_event(&consumer, e).await.unwrap();
    }
    let (x, y) = tokio::join!(a.send_due_once(), b.send_due_once());
    assert_eq!(x.unwrap() + y.unwrap(), events.len());
    assert_eq!(mails_in(&dir).len(), events.len());
    for row in a.list_deliveries(100).await.unwrap() {
        assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));
    }
}

/// The dev page's list: newest first, with the address used once sent.
async fn the_delivery_log_lists_newest_first_over_grpc(backend: Backend) {
    let dir = temp_dir("outbox");
    let contacts = FixedContacts::new().with("1234567", "a@example.jp");
    let n = notifier(fresh_db(backend).await, config(files(&dir)), contacts).await;
    let consumer = n.consumer_specs()[0].durable.clone();
    let first = email_changed("1234567");
    n.record_event(&consumer, &first).await.unwrap();
    n.send_due_once().await.unwrap();
    let second = email_changed("7777777");
    n.record_event(&consumer, &second).await.unwrap();

    let grpc = NotificationGrpc::new(n.clone());
    let list = grpc
        .list_deliveries(tonic::Request::new(ListDeliveriesRequest { limit: 10 }))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].event_id, second.id);
    assert_eq!(list[0].status, "pending");
    assert_eq!(list[0].to, "");
    assert_eq!(list[0].sent_at, "");
    assert_eq!(list[0].attempts, 0);
    assert_eq!(list[0].subject, "メールアドレス変更完了のお知らせ");
    assert_eq!(list[1].event_id, first.id);
    assert_eq!(list[1].status, "sent");
    assert_eq!(list[1].to, "a@example.jp");
    assert!(!list[1].sent_at.is_empty());
    assert_eq!(list[1].attempts, 1);
    assert!(!list[1].delivery_id.is_empty());
    let one = grpc
        .list_deliveries(tonic::Request::new(ListDeliveriesRequest { limit: 1 }))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].event_id, second.id);
}

/// A patron event without a mail and an event that cannot be read are acknowledged (the
/// consumer goes on to the next event) and leave no delivery.
async fn events_without_mail_or_unusable_are_acknowledged_and_skipped(backend: Backend) {
    let dir = temp_dir("outbox");
    let contacts = FixedContacts::new().with("1234567", "a@example.jp");
    let n = notifier(fresh_db(backend).await, config(files(&dir)), contacts).await;
    let consumer = n.consumer_specs()[0].durable.clone();
    let registered = Event::new("patron.registered", vec![]);
    let garbage = Event::new("patron.email.changed", vec![0xff, 0xff, 0xff]);
    assert_eq!(
        n.record_event(&consumer, &registered).await.unwrap(),
        Recorded::Ignored
    );
    assert_eq!(
        n.record_event(&consumer, &garbage).await.unwrap(),
        Recorded::Rejected
    );

    let bus: SharedBus = Arc::new(MemoryBus::new());
    let stop = run(&n, bus.clone());
    let good = email_changed("1234567");
    for e in [&registered, &garbage, &good] {
        bus.publish(e).await.unwrap();
    }
    sent(&n, &good.id).await;
    assert_eq!(n.list_deliveries(100).await.unwrap().len(), 1);
    stop.trigger();
}

mod grpc_contacts {
    use super::*;
    use kitsuki_proto::patron as pb;
    use kitsuki_proto::patron::patron_service_server::{PatronService, PatronServiceServer};
    use tonic::{Request, Response, Status};

    /// A patron service that knows one card, one verification request, and a card whose
    /// look-up fails inside the service.
    #[derive(Debug)]
    struct Patrons;

    #[tonic::async_trait]
    impl PatronService for Patrons {
        async fn get_contact(
            &self,
            req: Request<pb::GetContactRequest>,
        ) -> Result<Response<pb::Contact>, Status> {
            let r = req.into_inner();
            let contact = |email: &str| pb::Contact {
                card_number: r.card_number.clone(),
                name: "杵築 花子".into(),
                email: email.into(),
            };
            match (r.card_number.as_str(), r.verification_id.as_str()) {
                ("1234567", "") => Ok(Response::new(contact("a@example.jp"))),
                ("1234567", "v-1") => Ok(Response::new(contact("new@example.jp"))),
                ("9999999", _) => Err(Status::internal("database is down")),
                _ => Err(Status::not_found("no contact")),
            }
        }
    }

    async fn serve<T: PatronService>(svc: PatronServiceServer<T>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn get_contact_answers_and_not_found_means_no_address() {
        let url = serve(PatronServiceServer::new(Patrons)).await;
        let contacts = GrpcContacts::connect_lazy(&url).unwrap();
        let c = contacts.contact("1234567", None).await.unwrap().unwrap();
        assert_eq!(
            (c.email.as_str(), c.name.as_str()),
            ("a@example.jp", "杵築 花子")
        );
        let v = contacts
            .contact("1234567", Some("v-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.email, "new@example.jp");
        assert_eq!(
            contacts.contact("1234567", Some("v-2")).await.unwrap(),
            None
        );
        assert_eq!(contacts.contact("7654321", None).await.unwrap(), None);
        assert!(
            contacts.contact("9999999", None).await.is_err(),
            "a failure is not 'no address'"
        );
    }

    /// Nobody listening: an error to retry, never `None`.
    #[tokio::test]
    async fn an_unreachable_patron_service_is_an_error() {
        let url = format!("http://127.0.0.1:{}", free_port());
        let contacts = GrpcContacts::connect_lazy(&url).unwrap();
        let err = tokio::time::timeout(Duration::from_secs(20), contacts.contact("1234567", None))
            .await
            .expect("an answer")
            .unwrap_err();
        assert_eq!(err.code, kitsuki_proto::ErrorCode::Unavailable);
    }

    /// A patron service without GetContact answers UNIMPLEMENTED: retried, not `None`.
    #[tokio::test]
    async fn a_patron_service_without_get_contact_is_an_error() {
        #[derive(Debug)]
        struct Old;
        #[tonic::async_trait]
        impl PatronService for Old {}
        let url = serve(PatronServiceServer::new(Old)).await;
        let contacts = GrpcContacts::connect_lazy(&url).unwrap();
        assert!(contacts.contact("1234567", None).await.is_err());
    }
}

/// Retention (ARCHITECTURE.md "Retention"): a delivery that is done (here `no_address`) and
/// the inbox ids go once past their periods, on the schedule's due job after the test clock
/// moved; a pending one stays, however old.
async fn the_delivery_log_of_mails_done_goes_after_180_days_pending_ones_stay(backend: Backend) {
    use kitsuki_platform::retention;
    use kitsuki_platform::shutdown::Shutdown;
    use kitsuki_platform::testclock::DueJobs;
    let dir = temp_dir("outbox");
    let contacts = FixedContacts::new().with("1234567", "a@example.jp");
    let clock = Arc::new(TestClock::new());
    clock.set(datetime!(2026-05-10 01:00 UTC));
    let n = notifier_with_clock(
        fresh_db(backend).await,
        config(files(&dir)),
        contacts.clone(),
        clock.clone(),
    )
    .await;
    let consumer = &n.consumer_specs()[0].durable;
    let done = email_changed("1111111");
    let waiting = email_changed("1234567");
    // The unknown card's mail ends as no_address; the other, recorded after the sender's
    // round, stays pending.
    n.record_event(consumer, &done).await.unwrap();
    n.send_due_once().await.unwrap();
    assert_eq!(
        n.deliveries_of_event(&done.id).await.unwrap()[0].status,
        "no_address"
    );
    n.record_event(consumer, &waiting).await.unwrap();
    let jobs = DueJobs::default();
    let shutdown = Shutdown::new();
    let task = retention::schedule(
        "notification",
        clock.clone(),
        n.retention(),
        &jobs,
        &shutdown,
    );
    let inbox_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM inbox")
            .fetch_one(&n.db().pool)
            .await
            .unwrap()
    };
    clock.advance(time::Duration::days(179));
    jobs.run_all().await;
    assert_eq!(
        n.list_deliveries(100).await.unwrap().len(),
        2,
        "kept 180 days"
    );
    assert_eq!(inbox_rows().await, 0, "inbox ids go after 30 days");
    clock.advance(time::Duration::days(2));
    jobs.run_all().await;
    let left = n.list_deliveries(100).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].event_id, waiting.id, "the pending one stays");
    shutdown.trigger();
    task.await.unwrap();
}
