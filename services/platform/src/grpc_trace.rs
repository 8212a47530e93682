//! Trace context across the request hops (W3C `traceparent`/`tracestate`): a gRPC client
//! channel that opens a client span per call and puts its context into the request
//! metadata, and the server middleware of every listener that opens one server span per
//! gRPC call or HTTP request, child of the context the caller sent. Together with the
//! event headers ([`crate::events`]) this lets an operator follow one click of a patron
//! through the gateway, the services and the bus in one trace.
//!
//! Without an OTLP endpoint the spans still exist for the logs, and nothing is injected
//! (an unexported span has no valid context).

use std::task::{Context as TaskContext, Poll};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::transport::Channel;
use tracing::Instrument;
use tracing::field::Empty;
use tracing::instrument::Instrumented;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::grpc_retry;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes the trace context of `span` into request headers (gRPC metadata are headers).
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers))
    });
}

/// The trace context a caller sent in its request headers (empty when it sent none).
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`).
fn rpc_parts(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""))
}

/// A tonic channel whose every call runs in a client span and carries that span's trace
/// context to the server, and is sent again when that is safe ([`grpc_retry`]). Cheap to
/// clone, like the channel inside.
#[derive(Clone, Debug)]
pub struct TracedChannel {
    inner: Channel,
    retries: bool,
}

impl TracedChannel {
    pub fn new(inner: Channel) -> TracedChannel {
        TracedChannel {
            inner,
            retries: true,
        }
    }

    /// The same channel without retries: each call is sent once (tests of what a caller
    /// answers when its peer is down, which need not wait out the retry budget).
    pub fn without_retries(self) -> TracedChannel {
        TracedChannel {
            retries: false,
            ..self
        }
    }
}

impl From<Channel> for TracedChannel {
    fn from(inner: Channel) -> TracedChannel {
        TracedChannel::new(inner)
    }
}

impl tower::Service<axum::http::Request<tonic::body::Body>> for TracedChannel {
    type Response = axum::http::Response<tonic::body::Body>;
    type Error = tonic::codegen::StdError;
    type Future = Instrumented<
        futures::future::BoxFuture<'static, Result<Self::Response, tonic::codegen::StdError>>,
    >;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: axum::http::Request<tonic::body::Body>) -> Self::Future {
        // Called from inside the client method's future, so the current span is the
        // caller's (a handler, a consumer, a mail send): the client span becomes its child.
        let path = req.uri().path();
        let (service, method) = rpc_parts(path);
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
        );
        inject(&span, req.headers_mut());
        // The channel polled ready goes with this call (tower's contract); the one left
        // here is polled again for the next.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let future: futures::future::BoxFuture<'static, _> =
            if !self.retries || req.extensions().get::<grpc_retry::NoRetry>().is_some() {
                let mut ready = ready;
                Box::pin(async move { ready.call(req).await.map_err(Into::into) })
            } else {
                Box::pin(with_retries(ready, req))
            };
        future.instrument(span)
    }
}

/// Sends `req` on `channel` and again while [`grpc_retry::verdict`] says so, within
/// [`grpc_retry::BUDGET`] (and the request's own deadline), with backoff. The request's
/// body (one encoded message: every method is unary) is read once and sent from memory.
async fn with_retries(
    mut channel: Channel,
    req: axum::http::Request<tonic::body::Body>,
) -> Result<axum::http::Response<tonic::body::Body>, tonic::codegen::StdError> {
    use http_body_util::BodyExt;
    use tower::{Service, ServiceExt};

    let started = tokio::time::Instant::now();
    let budget = grpc_retry::grpc_timeout(req.headers())
        .map_or(grpc_retry::BUDGET, |t| t.min(grpc_retry::BUDGET));
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let bytes = body.collect().await?.to_bytes();
    let mut backoff = std::time::Duration::ZERO;
    let mut attempt = 1u32;
    loop {
        let req = axum::http::Request::from_parts(
            parts.clone(),
            tonic::body::Body::new(http_body_util::Full::new(bytes.clone())),
        );
        let outcome = channel.ready().await?.call(req).await;
        let verdict = match &outcome {
            Ok(response) => grpc_retry::verdict(
                &path,
                Some(grpc_retry::header_status(response.headers())),
                None,
            ),
            Err(err) => {
                grpc_retry::verdict(&path, None, Some(err as &(dyn std::error::Error + 'static)))
            }
        };
        backoff = grpc_retry::next_backoff(backoff);
        if verdict == grpc_retry::Verdict::Done || started.elapsed() + backoff > budget {
            return outcome.map_err(Into::into);
        }
        tracing::debug!(
            rpc = %path,
            attempt,
            error = outcome.as_ref().err().map(|e| e.to_string()),
            "gRPC call failed on the way; sending it again"
        );
        attempt += 1;
        tokio::time::sleep(backoff).await;
    }
}

/// The operational endpoints are polled every few seconds by probes and Prometheus: spans
/// of them would only bury the traces that matter.
fn untraced(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// gRPC codes that are the server's fault (OpenTelemetry's rule for server spans):
/// unknown, deadline exceeded, unimplemented, internal, unavailable, data loss.
fn grpc_server_error(code: i64) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// Middleware of every listener: one server span per gRPC call (named by its method) or
/// HTTP request (named by its route, never by its path: paths carry card numbers), child
/// of the trace context in the request headers, so a call continues its caller's trace.
pub async fn server_span(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if untraced(path) {
        return next.run(req).await;
    }
    let grpc = is_grpc(req.headers());
    let span = if grpc {
        let (service, method) = rpc_parts(path);
        tracing::info_span!(
            "grpc.server",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = Empty,
            kitsuki.error_code = Empty,
        )
    } else {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        tracing::info_span!(
            "http.server",
            otel.name = %format_args!("{} {route}", req.method()),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = %req.method(),
            http.route = %route,
            http.response.status_code = Empty,
        )
    };
    let _ = span.set_parent(extract(req.headers()));
    let response = next.run(req).instrument(span.clone()).await;
    if grpc {
        // A unary call that failed answers "trailers only": its status is in the headers.
        // Without one there, the status comes in the trailers after a message, which
        // tonic sends only for a call that succeeded.
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        span.record("rpc.grpc.status_code", code);
        if let Some(e) = response
            .headers()
            .get(kitsuki_proto::error::CODE_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
        {
            span.record("kitsuki.error_code", e);
        }
        if grpc_server_error(code) {
            span.record("otel.status_code", "ERROR");
        }
    } else {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_paths_split_into_service_and_method() {
        assert_eq!(
            rpc_parts("/kitsuki.circulation.v1.CirculationService/PlaceHold"),
            ("kitsuki.circulation.v1.CirculationService", "PlaceHold")
        );
        assert_eq!(rpc_parts("/odd"), ("/odd", ""));
    }

    #[test]
    fn an_incoming_traceparent_is_the_extracted_parent() {
        use opentelemetry::trace::TraceContextExt;
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let cx = extract(&headers);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_remote());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(
            extract(&HeaderMap::new()).span().span_context().trace_id()
                == opentelemetry::trace::TraceId::INVALID
        );
    }

    #[test]
    fn ops_endpoints_and_grpc_requests_are_told_apart() {
        assert!(untraced("/healthz") && untraced("/metrics") && !untraced("/api/v1/me/holds"));
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        h.insert(
            "content-type",
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&h));
        assert!(grpc_server_error(13) && !grpc_server_error(5));
    }
}
