//! Extractors whose refusals speak the API's error shape. axum's own `Json` and `Query`
//! answer a malformed request with plain text (and some with 415 or 422); these wrap them so
//! every bad input is a 400 `invalid_input` JSON body (API.md: never a 500 for bad input).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use kitsuki_proto::ErrorCode;
use serde::de::DeserializeOwned;

use crate::state::AppState;
use crate::web::client_addr::{FORWARDED_FOR, client_ip};
use crate::web::error::ApiError;

/// A JSON request body. Syntax errors, missing or mistyped fields, a missing
/// `Content-Type: application/json` all become 400 `invalid_input`, with the parser's
/// explanation (about the caller's own input) as `detail`; a body over the router's limit
/// is 413 `payload_too_large` (`crate::web::limits`).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(ErrorCode::PayloadTooLarge))
            }
            Err(rejection) => Err(ApiError::invalid_input(rejection.body_text())),
        }
    }
}

/// Query parameters. Only a query string that cannot be read at all (a repeated key, bad
/// percent-encoding) is refused here; the meaning of each value is checked by the handler,
/// which knows the specific code to answer with.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::invalid_input(rejection.body_text())),
        }
    }
}

/// The address of the client (rule P13 throttles failed logins per address), or "" when
/// the server was started without connect info (tests, some embeddings).
///
/// It is the socket's address, unless that is one of the state's trusted proxies
/// (`--trusted-proxies`): then it is read from `X-Forwarded-For` as far as trusted
/// proxies wrote it ([`crate::web::client_addr::client_ip`]). From any other peer the header
/// is ignored: trusting it would let anyone pick the address their failed logins count
/// against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl<S> FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(ClientAddr(String::new()));
        };
        let state = AppState::from_ref(state);
        let forwarded: Vec<&str> = parts
            .headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let ip = client_ip(peer.ip(), &forwarded, state.trusted_proxies());
        Ok(ClientAddr(ip.to_string()))
    }
}
