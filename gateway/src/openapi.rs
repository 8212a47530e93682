//! The OpenAPI 3.1 document of the whole API of API.md, served at
//! `/api/v1/openapi.json`. It is a hand-written file (`openapi.json`) because it describes
//! the contract, including the routes not served yet (`x-kitsuki-status: planned`) and the
//! test clock that only a test run serves (`x-kitsuki-served-when: test-clock`); the tests
//! below keep it honest against the merged route table ([`crate::routes::routes`]).

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;

use crate::web::route_table::Routes;

/// The document, as served.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI_JSON,
    )
}

/// The API document.
pub(crate) fn routes() -> Routes {
    Routes::new().get("/api/v1/openapi.json", serve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::route_table::Served;
    use serde_json::Value;

    /// The (method, path) of every route the application serves in a run of `kind`.
    fn served(kind: Served) -> Vec<(&'static str, &'static str)> {
        crate::routes::routes(true, true)
            .table()
            .iter()
            .filter(|(_, _, s)| *s == kind)
            .map(|(m, p, _)| (*m, *p))
            .collect()
    }

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn document() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json parses")
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if METHODS.contains(&method.as_str()) {
                    out.push((method.to_ascii_uppercase(), path.clone(), op.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_document_parses_as_openapi_3_1() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string());
        assert!(doc["info"]["version"].is_string());
        assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    }

    #[test]
    fn every_served_route_is_in_the_document_and_not_marked_planned() {
        let doc = document();
        for (method, path) in served(Served::Always) {
            let op = &doc["paths"][path][method.to_ascii_lowercase()];
            assert!(op.is_object(), "{method} {path} missing from openapi.json");
            assert_ne!(
                op["x-kitsuki-status"], "planned",
                "{method} {path} is served"
            );
        }
    }

    #[test]
    fn every_operation_is_served_planned_or_served_by_the_binary() {
        let (always, test_clock_routes) = (served(Served::Always), served(Served::TestClock));
        for (method, path, op) in operations(&document()) {
            let served = always.iter().any(|(m, p)| *m == method && *p == path);
            let planned = op["x-kitsuki-status"] == "planned";
            let binary = op["x-kitsuki-served-by"] == "binary";
            let test_clock = op["x-kitsuki-served-when"] == "test-clock"
                && test_clock_routes
                    .iter()
                    .any(|(m, p)| *m == method && *p == path);
            assert!(
                served || planned || binary || test_clock,
                "{method} {path} is neither served nor marked planned"
            );
        }
    }

    #[test]
    fn the_test_clock_is_documented_as_served_only_with_test_clocks() {
        let doc = document();
        let test_clock = served(Served::TestClock);
        assert!(!test_clock.is_empty());
        for (method, path) in test_clock {
            let op = &doc["paths"][path][method.to_ascii_lowercase()];
            assert_eq!(op["x-kitsuki-served-when"], "test-clock", "{method} {path}");
            assert!(op.get("x-kitsuki-status").is_none(), "{method} {path}");
        }
    }

    #[test]
    fn every_path_of_api_md_is_documented() {
        let doc = document();
        let api_md = [
            ("POST", "/api/v1/session"),
            ("DELETE", "/api/v1/session"),
            ("GET", "/api/v1/me"),
            ("PUT", "/api/v1/me/password"),
            ("POST", "/api/v1/me/email"),
            ("POST", "/api/v1/email-verifications"),
            ("POST", "/api/v1/password-resets"),
            ("POST", "/api/v1/password-resets/confirm"),
            ("GET", "/api/v1/me/loans"),
            ("POST", "/api/v1/me/loans/{loan_id}/renew"),
            ("GET", "/api/v1/me/holds"),
            ("POST", "/api/v1/me/holds"),
            ("DELETE", "/api/v1/me/holds/{hold_id}"),
            ("GET", "/api/v1/titles"),
            ("GET", "/api/v1/titles/{title_id}"),
            ("POST", "/api/v1/staff/session"),
            ("DELETE", "/api/v1/staff/session"),
            ("POST", "/api/v1/branches/{branch}/patrons"),
            (
                "POST",
                "/api/v1/branches/{branch}/patrons/{card}/web-service",
            ),
            ("POST", "/api/v1/branches/{branch}/checkouts"),
            ("POST", "/api/v1/branches/{branch}/checkins"),
            ("POST", "/api/v1/branches/{branch}/loans/{loan_id}/renew"),
            ("POST", "/api/v1/branches/{branch}/holds"),
            ("POST", "/api/v1/branches/{branch}/holds/{hold_id}/confirm"),
            ("POST", "/api/v1/branches/{branch}/holds/{hold_id}/reject"),
            ("GET", "/api/v1/branches/{branch}/hold-shelf"),
            ("GET", "/api/v1/branches/{branch}/pull-list"),
            ("GET", "/api/v1/branches/{branch}/transits"),
            ("GET", "/api/v1/branches/{branch}/provisional-holds"),
            ("GET", "/api/v1/branches/{branch}/expired-holds"),
            ("POST", "/api/v1/admin/titles"),
            ("PUT", "/api/v1/admin/titles/{title_id}/readings"),
            ("POST", "/api/v1/admin/items"),
            ("POST", "/api/v1/admin/staff"),
            ("GET", "/api/v1/openapi.json"),
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("GET", "/metrics"),
            ("POST", "/api/v1/test/clock"),
        ];
        for (method, path) in api_md {
            assert!(
                doc["paths"][path][method.to_ascii_lowercase()].is_object(),
                "{method} {path} missing"
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        let pointer = r.strip_prefix('#').expect("local refs only");
                        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
                    }
                    map.values().for_each(|x| walk(x, doc));
                }
                Value::Array(items) => items.iter().for_each(|x| walk(x, doc)),
                _ => {}
            }
        }
        let doc = document();
        walk(&doc, &doc);
    }

    #[test]
    fn path_parameters_are_declared_and_operation_ids_unique() {
        let doc = document();
        let mut ids = std::collections::HashSet::new();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            let declared: Vec<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| match p.get("$ref").and_then(Value::as_str) {
                            Some(r) => doc.pointer(&r[1..]).unwrap()["name"].clone(),
                            None => p["name"].clone(),
                        })
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    assert!(
                        declared.iter().any(|d| d == name),
                        "{method} {path}: {name}"
                    );
                }
            }
        }
    }

    /// The refusals the gateway itself makes for every operation of a kind (issue 8: what
    /// Schemathesis found undocumented): `tests/schemathesis.rs` checks the running
    /// system against the document; this keeps the document from losing them.
    #[test]
    fn every_json_operation_documents_the_refusals_it_can_answer() {
        let doc = document();
        let resolve = |r: &Value| match r.get("$ref").and_then(Value::as_str) {
            Some(p) => doc.pointer(&p[1..]).unwrap().clone(),
            None => r.clone(),
        };
        let error_body = |r: &Value| {
            resolve(r)["content"]["application/json"]["schema"]["$ref"]
                == "#/components/schemas/Error"
        };
        for (method, path, op) in operations(&doc) {
            if !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" {
                continue;
            }
            let responses = &op["responses"];
            let schemes: Vec<&str> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_object())
                .flat_map(|s| s.keys().map(String::as_str))
                .collect();
            let mut needs = vec![];
            if schemes.contains(&"bearerAuth") {
                needs.push("401");
            }
            let changes = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
            if changes && schemes.iter().any(|s| s.ends_with("Cookie")) {
                needs.push("403");
                assert!(
                    resolve(&responses["403"])["description"]
                        .as_str()
                        .is_some_and(|d| d.contains("csrf_failed")),
                    "{method} {path}: 403 csrf_failed"
                );
            }
            let json_body = op["requestBody"]["content"]["application/json"].is_object();
            if json_body || path.contains('{') {
                needs.push("400");
            }
            if json_body {
                needs.push("413");
            }
            if op["x-kitsuki-served-when"] != "test-clock" {
                needs.push("503");
            }
            for status in needs {
                assert!(
                    responses[status].is_object() && error_body(&responses[status]),
                    "{method} {path}: {status} with the Error body"
                );
            }
            for (status, r) in responses.as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        error_body(r),
                        "{method} {path}: {status} with the Error body"
                    );
                }
                if status == "429" {
                    assert!(
                        resolve(r)["headers"]["Retry-After"].is_object(),
                        "{method} {path}: 429 with Retry-After"
                    );
                }
            }
        }
    }

    #[test]
    fn the_error_codes_of_the_error_schema_example_exist() {
        let doc = document();
        let code = doc["components"]["schemas"]["Error"]["example"]["error"]["code"]
            .as_str()
            .unwrap();
        assert!(kitsuki_proto::ErrorCode::from_code(code).is_some());
    }
}
