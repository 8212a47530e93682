//! Issue 5, traces: with the roles as separate processes exporting to a real OTLP gRPC
//! receiver (the OpenTelemetry protocol's own `TraceService`, `common::otlp`), a hold placed
//! through the gateway and the checkin that fills it are each one trace across the gRPC
//! hops (gateway → circulation) and the NATS hops (circulation → notification → the
//! `MailSent` consumer back in circulation), with the service, its version and its branch
//! as resource attributes.
//!
//! The test starts each request's trace itself (a `traceparent` header, as a browser
//! agent or an ingress would), so it knows which trace id to look for and that the
//! gateway continues a trace it is handed.

mod common;

use std::time::Duration;

use common::eventually;
use common::otlp::{Got, Receiver, value_of};
use common::system::{
    Api, READY_MAIL, System, counter_patron, mails_matching, title_with_copies, web_patron,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};

/// A fresh W3C trace context: (trace id, parent span id, `traceparent` value).
fn new_trace() -> (String, String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let header = format!("00-{trace_id}-{span_id}-01");
    (trace_id, span_id, header)
}

/// A JSON API call that starts a new trace; answers the status, body and trace id.
async fn traced_call(
    api: &Api,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value, String, String) {
    let (trace_id, parent, header) = new_trace();
    let resp = api
        .http
        .post(format!("{}{path}", api.base))
        .bearer_auth(token)
        .header("traceparent", header)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, trace_id, parent)
}

const GATEWAY: &str = "kitsuki-gateway";
const CIRCULATION_OTA: &str = "kitsuki-circulation-ota";
const NOTIFICATION: &str = "kitsuki-notification";

fn is_server(s: &Got) -> bool {
    s.kind == SpanKind::Server as i32
}

/// The gateway's server span of the request, child of the test's own span.
fn gateway_request<'a>(spans: &'a [Got], parent: &str) -> Option<&'a Got> {
    spans
        .iter()
        .find(|s| s.service == GATEWAY && is_server(s) && s.parent_span_id == parent)
}

/// A server span of `service` for the gRPC method `method` whose parent is a client span
/// of the gateway in the same trace: the call crossed the gRPC hop with its context.
fn grpc_hop<'a>(spans: &'a [Got], service: &str, method: &str) -> Option<&'a Got> {
    spans.iter().find(|s| {
        s.service == service
            && is_server(s)
            && s.attr("rpc.method").as_deref() == Some(method)
            && spans.iter().any(|c| {
                c.service == GATEWAY
                    && c.kind == SpanKind::Client as i32
                    && c.span_id == s.parent_span_id
                    && c.attr("rpc.method").as_deref() == Some(method)
            })
    })
}

/// The notification service's send of a mail of `template`.
fn mail_send<'a>(spans: &'a [Got], template: &str) -> Option<&'a Got> {
    spans.iter().find(|s| {
        s.service == NOTIFICATION
            && s.name == "notification.send"
            && s.attr("template").as_deref() == Some(template)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_and_the_checkin_that_fills_it_are_traces_across_grpc_and_nats() {
    let receiver = Receiver::default();
    let endpoint = receiver.start();
    let sys = System::start_with(
        "traces",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            // Spans reach the receiver within a fraction of a second, not the default 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
        ],
    )
    .await;
    let api = &sys.api;
    let staff = sys.staff().await;

    // One copy, at Ōta, on loan: a web hold is accepted (H1).
    let title_id = title_with_copies(
        api,
        &staff,
        "吾輩は猫である",
        "夏目漱石",
        &[("OT-1", "ota")],
    )
    .await;
    let borrower = counter_patron(api, &staff, "借りる 人").await;
    let (_, token, _) = web_patron(api, &sys.sink, &staff, "予約 花子", "hanako@example.jp").await;
    eventually("the copy lent at Ōta", Duration::from_secs(30), || async {
        let (s, _) = api
            .call(
                "POST",
                "/api/v1/branches/ota/checkouts",
                Some(&staff),
                Some(json!({"card_number": borrower, "barcode": "OT-1"})),
            )
            .await;
        // 404 until circulation's projection of the catalog's items has the copy.
        (s == 201).then_some(())
    })
    .await;

    // (i) The hold, placed in a trace of its own.
    let (hold_trace, hold_parent) = eventually(
        "a web hold accepted once the copy is on loan everywhere",
        Duration::from_secs(30),
        || async {
            let (s, _, trace, parent) = traced_call(
                api,
                "/api/v1/me/holds",
                &token,
                json!({"title_id": title_id, "pickup_branch": "ota", "receipt_mail": true}),
            )
            .await;
            (s == 201).then_some((trace, parent))
        },
    )
    .await;
    let spans = receiver
        .wait_trace(
            "the hold's spans from gateway, circulation and notification",
            &hold_trace,
            |spans| {
                gateway_request(spans, &hold_parent).is_some()
                    && spans
                        .iter()
                        .any(|s| s.service.starts_with("kitsuki-circulation-"))
                    && mail_send(spans, "hold_receipt").is_some()
            },
        )
        .await;
    let request = gateway_request(&spans, &hold_parent).unwrap();
    assert_eq!(
        request.attr("http.route").as_deref(),
        Some("/api/v1/me/holds")
    );
    assert!(
        spans.iter().any(|s| {
            s.service.starts_with("kitsuki-circulation-")
                && is_server(s)
                && s.attr("rpc.method").as_deref() == Some("PlaceHold")
                && spans
                    .iter()
                    .any(|c| c.service == GATEWAY && c.span_id == s.parent_span_id)
        }),
        "PlaceHold served in the gateway's trace, child of its client span: {spans:#?}"
    );

    // (ii) The checkin at Ōta puts the copy on the hold shelf; the ready mail follows.
    let (s, v, checkin_trace, checkin_parent) = traced_call(
        api,
        "/api/v1/branches/ota/checkins",
        &staff,
        json!({"barcode": "OT-1"}),
    )
    .await;
    assert_eq!((s, v["routing"].as_str()), (200, Some("hold_shelf")), "{v}");
    mails_matching(&sys.sink, READY_MAIL, 1).await;
    let spans = receiver
        .wait_trace(
            "the checkin's spans through circulation, notification and back",
            &checkin_trace,
            |spans| {
                gateway_request(spans, &checkin_parent).is_some()
                    && grpc_hop(spans, CIRCULATION_OTA, "Checkin").is_some()
                    && mail_send(spans, "hold_ready").is_some()
                    && spans.iter().any(|s| {
                        s.service.starts_with("kitsuki-circulation-") && s.name == "outbox.publish"
                    })
                    && spans.iter().any(|s| {
                        s.service.starts_with("kitsuki-circulation-")
                            && s.name == "circulation.mail_sent"
                    })
            },
        )
        .await;
    // The NATS hops: the ready mail's send descends from circulation's span of the
    // checkin, and circulation's `MailSent` consumer from that send.
    let send = mail_send(&spans, "hold_ready").unwrap();
    let parent_of_send = spans
        .iter()
        .find(|s| s.span_id == send.parent_span_id)
        .expect("the send's parent in the trace");
    assert_eq!(parent_of_send.service, CIRCULATION_OTA, "{spans:#?}");
    // The outbox relay published the event in the same trace, under the same parent,
    // without replacing the context the event carries. The three circulation instances
    // share one database and its outbox: any of their relays may be the one publishing.
    assert!(
        spans
            .iter()
            .any(|s| s.service.starts_with("kitsuki-circulation-")
                && s.name == "outbox.publish"
                && s.parent_span_id == send.parent_span_id),
        "the relay's hop in the checkin's trace: {spans:#?}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s.name == "circulation.mail_sent" && s.parent_span_id == send.span_id),
        "MailSent consumed as a child of the send: {spans:#?}"
    );
    let services: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.service.as_str()).collect();
    for service in [GATEWAY, CIRCULATION_OTA, NOTIFICATION] {
        assert!(services.contains(service), "{service} in {services:?}");
    }

    // (iii) Service, version and branch as resource attributes.
    let circulation = grpc_hop(&spans, CIRCULATION_OTA, "Checkin").unwrap();
    assert_eq!(
        value_of(&circulation.resource, "kitsuki.branch").as_deref(),
        Some("ota")
    );
    assert_eq!(
        value_of(&circulation.resource, "service.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        value_of(&request.resource, "kitsuki.branch"),
        None,
        "the gateway serves every branch"
    );
}
