//! Issue 5, "SIGTERM under load … loses no event", for the events written while a role
//! stops: the outbox relay stops last (services/platform/src/shutdown.rs), so what the
//! role's other tasks commit on their way out is published before the process exits.
//!
//! The whole system runs as separate processes ([`common::system`]). The notification
//! service sends its mail over a slow link to the SMTP server, so that ready mails are in
//! flight when it gets SIGTERM. Its sender finishes the mails it has begun, and for each
//! one commits the delivery's `sent` mark and its `MailSent` to the outbox in one
//! transaction — after the signal. The service is NOT started again: every hold whose ready
//! mail is recorded as sent must still become `ready` at circulation (the patron's hold
//! list through the gateway shows `ready` and a `ready_until` date), which it only does if
//! that `MailSent` was published before the process exited.

mod common;

use std::time::Duration;

use common::system::{
    Api, System, checkout_when_known, counter_patron, exit_status, sigterm, title_with_copies,
    web_patron,
};
use common::{eventually, free_port};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Between SIGTERM and SIGKILL in k8s/base (terminationGracePeriodSeconds 30, less the
/// preStop sleep of 5 s).
const GRACE: Duration = Duration::from_secs(25);

/// What the slow link adds to each answer of the SMTP server: a mail takes about a second
/// (greeting, EHLO, MAIL, RCPT, DATA, end of data, …), so that several are in flight at
/// once (the sender sends four at a time).
const LINK_DELAY: Duration = Duration::from_millis(150);

/// How many holds become ready at once.
const HOLDS: usize = 12;

/// A TCP link to `target` whose answers (server to client) each arrive `LINK_DELAY` late:
/// a slow network in front of the real SMTP server. Returns its `smtp://` URL.
async fn slow_link_to(target: u16) -> String {
    let port = free_port();
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let upstream = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                    let _ = server_tx.shutdown().await;
                });
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match server_rx.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    // The link's latency (part of the fixture, not a wait of the test).
                    tokio::time::sleep(LINK_DELAY).await;
                    if client_tx.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = client_tx.shutdown().await;
                upstream.abort();
            });
        }
    });
    format!("smtp://127.0.0.1:{port}")
}

/// The patron's holds, as the gateway lists them.
async fn holds_of(api: &Api, token: &str) -> Vec<Value> {
    let (s, v) = api.call("GET", "/api/v1/me/holds", Some(token), None).await;
    assert_eq!(s, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mails_sent_while_notification_stops_reach_circulation_without_a_restart() {
    let began = std::time::Instant::now();
    let mut sys = System::start("shutdown-order").await;
    let staff = sys.staff().await;
    let branch = "yamaga";

    // Three web patrons with verified addresses (their verification mails go the quick
    // way), each to hold four titles whose only copy is on loan at Yamaga.
    let mut patrons = Vec::new();
    for i in 0..3 {
        let (card, token, _) = web_patron(
            &sys.api,
            &sys.sink,
            &staff,
            &format!("予約 {i}"),
            &format!("order{i}@example.jp"),
        )
        .await;
        patrons.push((card, token));
    }
    // Two borrowers, within the loan limit (L3).
    let borrowers = [
        counter_patron(&sys.api, &staff, "借りる 順番").await,
        counter_patron(&sys.api, &staff, "借りる 順番 二").await,
    ];
    let mut barcodes = Vec::new();
    for j in 0..HOLDS {
        let barcode = format!("SO-{j}");
        let title_id = title_with_copies(
            &sys.api,
            &staff,
            &format!("注文の多い料理店 {j}"),
            "宮沢賢治",
            &[(barcode.as_str(), branch)],
        )
        .await;
        checkout_when_known(&sys.api, &staff, branch, &borrowers[j % 2], &barcode).await;
        let (s, v) = sys
            .api
            .call(
                "POST",
                &format!("/api/v1/branches/{branch}/holds"),
                Some(&staff),
                Some(json!({"card_number": patrons[j % 3].0, "title_id": title_id, "pickup_branch": branch})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        barcodes.push(barcode);
    }

    // From now on the notification service reaches the mail server over the slow link.
    let link = slow_link_to(sys.sink.port).await;
    let status = sys.notification.terminate();
    assert!(status.success(), "notification restarted for the slow link");
    sys.notification = sys.start_notification_via(&link);
    common::wait_ready(&sys.api.http, &sys.notification.url).await;
    eprintln!("prepared in {:?}", began.elapsed());

    // Every copy comes back at once: twelve holds wait for their ready mails.
    let mut checkins = tokio::task::JoinSet::new();
    for barcode in barcodes {
        let api = Api {
            http: sys.api.http.clone(),
            base: sys.api.base.clone(),
        };
        let staff = staff.clone();
        checkins.spawn(async move {
            let (s, v) = api
                .call(
                    "POST",
                    &format!("/api/v1/branches/{branch}/checkins"),
                    Some(&staff),
                    Some(json!({ "barcode": barcode })),
                )
                .await;
            assert_eq!((s, v["routing"].as_str()), (200, Some("hold_shelf")), "{v}");
        });
    }
    while let Some(done) = checkins.join_next().await {
        done.unwrap();
    }

    // SIGTERM once a ready mail is recorded as sent while another is being sent (claimed,
    // on the slow link): the sender finishes that one after the signal.
    let at_signal = eventually(
        "a ready mail sent and another on its way",
        Duration::from_secs(60),
        || async {
            let log = sys.ready_deliveries_in_db().await;
            let sent = log.iter().any(|d| d.status == "sent");
            let sending = log.iter().any(|d| d.status == "pending" && d.attempts > 0);
            (sent && sending).then_some(log)
        },
    )
    .await;
    sigterm(&sys.notification);
    let signalled = std::time::Instant::now();
    let sent_at_signal = at_signal.iter().filter(|d| d.status == "sent").count();
    let status = exit_status(&mut sys.notification, GRACE).await;
    eprintln!("notification stopped in {:?}", signalled.elapsed());
    assert!(status.success(), "notification on SIGTERM: {status:?}");

    // Not started again. What its delivery log records as sent went out with its MailSent.
    let log = sys.ready_deliveries_in_db().await;
    let sent: Vec<&String> = log
        .iter()
        .filter(|d| d.status == "sent")
        .map(|d| &d.hold_id)
        .collect();
    eprintln!(
        "ready mails sent: {sent_at_signal} at the signal, {} when the process had exited, of {}",
        sent.len(),
        log.len()
    );
    assert!(
        sent.len() > sent_at_signal,
        "mails in flight at the signal were finished and recorded: {log:?}"
    );
    assert_eq!(
        sys.notification_outbox_pending().await,
        0,
        "every MailSent published before the process exited"
    );
    let api = &sys.api;
    for hold_id in sent {
        eventually(
            &format!("hold {hold_id} ready at circulation"),
            Duration::from_secs(30),
            || async {
                for (_, token) in &patrons {
                    if let Some(h) = holds_of(api, token)
                        .await
                        .into_iter()
                        .find(|h| h["hold_id"] == hold_id.as_str())
                    {
                        return (h["status"] == "ready"
                            && h["ready_until"].as_str().is_some_and(|d| d.len() == 10))
                        .then_some(());
                    }
                }
                panic!("hold {hold_id} is in no patron's list");
            },
        )
        .await;
    }
    eprintln!("done after {:?}", began.elapsed());
}
