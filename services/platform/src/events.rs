//! Building events for the outbox: protobuf payload, event id (UUID v7, so ids sort by
//! time), the event time and the current trace context as headers.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::bus::Event;

/// Header with the instant the event happened (RFC 3339 UTC).
pub const EVENT_TIME_HEADER: &str = "kitsuki-event-time";

pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An event whose payload is `msg`, with the current span's trace context in its headers.
pub fn build<M: prost::Message>(
    subject: impl Into<String>,
    id: String,
    occurred_at: &str,
    msg: &M,
) -> Event {
    let mut headers = vec![(EVENT_TIME_HEADER.to_string(), occurred_at.to_string())];
    inject_trace_context(&mut headers);
    Event {
        id,
        subject: subject.into(),
        payload: msg.encode_to_vec(),
        headers,
    }
}

struct VecInjector<'a>(&'a mut Vec<(String, String)>);

impl Injector for VecInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}

/// Adds `traceparent` (and `tracestate`) of the current span, when tracing is exported.
pub fn inject_trace_context(headers: &mut Vec<(String, String)>) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut VecInjector(headers))
    });
}

struct MapExtractor<'a>(&'a HashMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Makes `span` a child of the trace context carried by an event's headers.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &[(String, String)]) {
    let map: HashMap<String, String> = headers.iter().cloned().collect();
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&MapExtractor(&map)));
    let _ = span.set_parent(cx);
}
