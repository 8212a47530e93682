//! A real OTLP gRPC trace receiver for the tests and benches: the OpenTelemetry
//! protocol's own `TraceService` (from `opentelemetry-proto`), served on a loopback port,
//! keeping every span it is sent in memory. Processes export to it when started with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set to [`Receiver::start`]'s URL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use super::eventually;

/// One received span with what the test asks of it.
#[derive(Debug, Clone)]
pub struct Got {
    pub service: String,
    pub resource: Vec<KeyValue>,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub kind: i32,
    pub attributes: Vec<KeyValue>,
}

impl Got {
    pub fn attr(&self, key: &str) -> Option<String> {
        value_of(&self.attributes, key)
    }
}

pub fn text(v: &AnyValue) -> Option<String> {
    match v.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

pub fn value_of(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(text)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The OTLP trace receiver: keeps every span it is sent.
#[derive(Clone, Default)]
pub struct Receiver {
    spans: Arc<Mutex<Vec<Got>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = Vec::new();
        for rs in request.into_inner().resource_spans {
            let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
            let service = value_of(&resource, "service.name").unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    got.push(Got {
                        service: service.clone(),
                        resource: resource.clone(),
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        name: s.name,
                        kind: s.kind,
                        attributes: s.attributes,
                    });
                }
            }
        }
        self.spans.lock().unwrap().extend(got);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Serves OTLP gRPC on a free loopback port; answers its endpoint URL.
    pub fn start(&self) -> String {
        let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap())
            .expect("bind the OTLP receiver");
        let addr = incoming.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
        });
        format!("http://{addr}")
    }

    pub fn of_trace(&self, trace_id: &str) -> Vec<Got> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// Waits until the spans of `trace_id` satisfy `done`, and returns them.
    pub async fn wait_trace(
        &self,
        what: &str,
        trace_id: &str,
        done: impl Fn(&[Got]) -> bool,
    ) -> Vec<Got> {
        eventually(what, Duration::from_secs(30), || async {
            let spans = self.of_trace(trace_id);
            done(&spans).then_some(spans)
        })
        .await
    }

    /// Every span received so far.
    pub fn count(&self) -> usize {
        self.spans.lock().unwrap().len()
    }
}
