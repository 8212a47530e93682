//! Request metrics for every listener, and the identity of the process:
//!
//! - `kitsuki_requests_total{service,branch?,route,status,code}` and
//!   `kitsuki_request_duration_seconds{service,branch?,route}`, for gRPC methods and HTTP
//!   routes alike;
//! - `kitsuki_build_info{service,branch?,version}`, 1 for as long as the process runs, so
//!   that an instance that is gone shows as an absent series (k8s/base/monitoring.yaml).
//!
//! Decision: the `service` (and for circulation the `branch`) label is put on by the process
//! itself rather than left to the scrape's target labels (`job`, `pod`), so that the
//! dashboards and alerts work whatever relabelling the cluster's Prometheus does, and the
//! embedded run, one process, still says which service it is. It is put on once, as global
//! labels of the process's Prometheus recorder ([`configure`], from [`name_process`]), so
//! that every metric of every crate has them (the bus, the outbox relay, mail, circulation)
//! and no call site repeats them. A call site's own `branch` wins over the global one: the
//! all-in-one's three instances, and a hold counted under its pickup branch.
//!
//! gRPC answers are HTTP 200 with the outcome in `grpc-status`: here they are counted with
//! the HTTP status of their kitsuki error code (the `kitsuki-error-code` metadata, so
//! `internal` is 500 and `unavailable` 503 as at the gateway) and that code in `code`, so
//! one error-rate expression (`status=~"5.."`) covers both protocols. A gRPC status without
//! our metadata (a method that does not exist, a peer's transport failure) is mapped by the
//! usual gRPC-to-HTTP table. A unary error is sent as a trailers-only answer, whose
//! `grpc-status` is among the headers seen here; a success puts it in the trailers, after
//! the body, so an answer without it in the headers is counted as OK.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use kitsuki_proto::ErrorCode;
use kitsuki_proto::error::CODE_METADATA_KEY;
use metrics::Label;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Bucket bounds (seconds) of `kitsuki_request_duration_seconds`, from a fast gRPC read
/// (about a millisecond) to a login's password hashing and a slow search. Buckets rather
/// than the exporter's default summary, so that the dashboards' p50/p95/p99 per service are
/// quantiles over every route and every replica (`histogram_quantile` of summed buckets).
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The recorder's settings (`telemetry::prometheus` builds the process's recorder through
/// it): the buckets of this module's histogram, and the process's `service` and `branch`
/// as global labels of every metric (`service="unknown"` when the process was not named
/// first, e.g. in a library's own tests).
pub fn configure(builder: PrometheusBuilder) -> PrometheusBuilder {
    let name = Matcher::Full("kitsuki_request_duration_seconds".to_string());
    let mut builder = match builder.set_buckets_for_metric(name, DURATION_BUCKETS) {
        Ok(b) => b,
        // Only empty bounds are refused, and these are not empty.
        Err(_) => unreachable!("DURATION_BUCKETS is not empty"),
    };
    for label in process_labels() {
        builder = builder.add_global_label(label.key(), label.value());
    }
    builder
}

/// The process's `service` and `branch` labels, set once by [`name_process`].
struct ProcessLabels {
    service: String,
    branch: Option<String>,
}

static PROCESS: OnceLock<ProcessLabels> = OnceLock::new();

/// Names the process for its metrics: `service` is the role as `telemetry::init` gets it
/// (`catalog`, `circulation-yamaga`, `all-in-one`); a branch suffix is taken off, the branch
/// goes into its own label. Only before the recorder is built does it label the metrics
/// (`telemetry::init` calls it first); later calls are ignored.
pub fn name_process(service: &str, branch: Option<&str>) {
    let branch = branch.map(str::to_string).filter(|b| !b.is_empty());
    let service = match &branch {
        Some(b) => service
            .strip_suffix(&format!("-{b}"))
            .unwrap_or(service)
            .to_string(),
        None => service.to_string(),
    };
    let _ = PROCESS.set(ProcessLabels { service, branch });
}

/// Names the process ([`name_process`]) and records `kitsuki_build_info{version}` = 1 (its
/// `service` and `branch` are the global labels).
pub fn build_info(service: &str, branch: Option<&str>) {
    name_process(service, branch);
    metrics::gauge!("kitsuki_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// `service` (`unknown` before [`build_info`], e.g. in a library's own tests) and `branch`
/// when the process has one.
fn process_labels() -> Vec<Label> {
    match PROCESS.get() {
        Some(p) => {
            let mut labels = vec![Label::new("service", p.service.clone())];
            if let Some(b) = &p.branch {
                labels.push(Label::new("branch", b.clone()));
            }
            labels
        }
        None => vec![Label::from_static_parts("service", "unknown")],
    }
}

pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| {
            // gRPC paths are fixed method names; anything else unmatched is folded so that
            // random URLs cannot blow up the label set.
            let p = req.uri().path();
            if is_grpc(req.headers()) {
                p.to_string()
            } else {
                "unmatched".to_string()
            }
        });
    let start = Instant::now();
    let res = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let (status, code) = outcome(&res);
    // A gRPC path no service has is folded too: any client can make those up.
    let route = if code == "grpc_unimplemented" {
        "unmatched".to_string()
    } else {
        route
    };
    // `service` and `branch` are the recorder's global labels.
    let mut labels = vec![Label::new("route", route)];
    metrics::histogram!("kitsuki_request_duration_seconds", labels.clone()).record(elapsed);
    labels.push(Label::new("status", status.to_string()));
    labels.push(Label::new("code", code));
    metrics::counter!("kitsuki_requests_total", labels).increment(1);
    res
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The HTTP status to count an answer under, and its `code` label: `ok`, a kitsuki error
/// code, `grpc_<code>` for a gRPC status without our metadata, or `http` for an HTTP
/// error (whose kitsuki code is in the body, out of reach here).
fn outcome(res: &Response) -> (u16, String) {
    let http = res.status().as_u16();
    let headers = res.headers();
    if !is_grpc(headers) || http != 200 {
        let code = if http < 400 { "ok" } else { "http" };
        return (http, code.to_string());
    }
    if let Some(code) = headers
        .get(CODE_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorCode::from_code)
    {
        return (code.http_status(), code.as_str().to_string());
    }
    match headers.get("grpc-status") {
        None => (200, "ok".to_string()),
        Some(v) => grpc_to_http(tonic::Code::from_bytes(v.as_bytes())),
    }
}

/// The customary HTTP status of a gRPC status code (as grpc-gateway maps them).
fn grpc_to_http(code: tonic::Code) -> (u16, String) {
    use tonic::Code as C;
    let (status, name) = match code {
        C::Ok => return (200, "ok".to_string()),
        C::Cancelled => (499, "cancelled"),
        C::Unknown => (500, "unknown"),
        C::InvalidArgument => (400, "invalid_argument"),
        C::DeadlineExceeded => (504, "deadline_exceeded"),
        C::NotFound => (404, "not_found"),
        C::AlreadyExists => (409, "already_exists"),
        C::PermissionDenied => (403, "permission_denied"),
        C::ResourceExhausted => (429, "resource_exhausted"),
        C::FailedPrecondition => (400, "failed_precondition"),
        C::Aborted => (409, "aborted"),
        C::OutOfRange => (400, "out_of_range"),
        C::Unimplemented => (501, "unimplemented"),
        C::Internal => (500, "internal"),
        C::Unavailable => (503, "unavailable"),
        C::DataLoss => (500, "data_loss"),
        C::Unauthenticated => (401, "unauthenticated"),
    };
    (status, format!("grpc_{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn grpc_answer(headers: &[(&str, &str)]) -> Response {
        let mut b = Response::builder()
            .status(200)
            .header("content-type", "application/grpc");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn grpc_errors_count_with_the_http_status_of_their_kitsuki_code() {
        let internal = grpc_answer(&[("grpc-status", "13"), (CODE_METADATA_KEY, "internal")]);
        assert_eq!(outcome(&internal), (500, "internal".to_string()));
        let refused = grpc_answer(&[
            ("grpc-status", "9"),
            (CODE_METADATA_KEY, ErrorCode::HoldDuplicate.as_str()),
        ]);
        assert_eq!(
            outcome(&refused),
            (
                ErrorCode::HoldDuplicate.http_status(),
                ErrorCode::HoldDuplicate.as_str().to_string()
            )
        );
    }

    #[test]
    fn grpc_statuses_without_our_metadata_use_the_grpc_table() {
        let down = grpc_answer(&[("grpc-status", "14")]);
        assert_eq!(outcome(&down), (503, "grpc_unavailable".to_string()));
        let missing = grpc_answer(&[("grpc-status", "12")]);
        assert_eq!(outcome(&missing), (501, "grpc_unimplemented".to_string()));
        // A success carries its status in the trailers.
        assert_eq!(outcome(&grpc_answer(&[])), (200, "ok".to_string()));
    }

    #[test]
    fn http_answers_keep_their_status() {
        let ok = Response::builder().status(204).body(Body::empty()).unwrap();
        assert_eq!(outcome(&ok), (204, "ok".to_string()));
        let bad = Response::builder().status(502).body(Body::empty()).unwrap();
        assert_eq!(outcome(&bad), (502, "http".to_string()));
    }
}
