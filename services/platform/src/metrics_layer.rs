//! Request metrics for every listener: `kitsuki_requests_total{route,status}` and
//! `kitsuki_request_duration_seconds{route}` (gRPC methods and HTTP routes alike).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| {
            // gRPC paths are fixed method names; anything else unmatched is folded so that
            // random URLs cannot blow up the label set.
            let p = req.uri().path();
            if req
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
            {
                p.to_string()
            } else {
                "unmatched".to_string()
            }
        });
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("kitsuki_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("kitsuki_request_duration_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}
