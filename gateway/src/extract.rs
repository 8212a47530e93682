//! Extractors whose refusals speak the API's error shape. axum's own `Json` and `Query`
//! answer a malformed request with plain text (and some with 415 or 422); these wrap them so
//! every bad input is a 400 `invalid_input` JSON body (API.md: never a 500 for bad input).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body. Syntax errors, missing or mistyped fields, a missing
/// `Content-Type: application/json` and oversized bodies all become 400 `invalid_input`,
/// with the parser's explanation (about the caller's own input) as `detail`.
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

/// The address of the client as the listener saw it, or "" when the server was started
/// without connect info (tests, some embeddings). Login throttling (rule P13) uses it.
///
/// `X-Forwarded-For` is deliberately not read: trusting it without knowing the proxy in
/// front would let anyone pick the address their failed logins count against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_default();
        Ok(ClientAddr(addr))
    }
}
