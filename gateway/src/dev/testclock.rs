//! `POST /api/v1/test/clock` (API.md "Operations and tests"): moves the clock of every
//! service and lets their due jobs run, so that a test can step over the 2-day and 1-week
//! limits and make loans overdue without waiting. Routed only when the gateway was given
//! test clock clients ([`AppState::with_test_clocks`]), which a run passes only when
//! started with `KITSUKI_TEST_CLOCK=1`; elsewhere the path does not exist (404).

use axum::Json;
use axum::extract::State;
use kitsuki_platform::clock::parse_instant;
use kitsuki_proto::testclock::MoveClockRequest;
use serde::{Deserialize, Serialize};

use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::ApiJson;
use crate::web::route_table::{Routes, Served};

/// `{advance_days}` or `{now}`, exactly one of them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    #[serde(default)]
    pub advance_days: Option<u32>,
    #[serde(default)]
    pub now: Option<String>,
}

/// The clock after the move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockView {
    pub now: String,
}

impl MoveBody {
    /// The request each service is sent; 400 unless exactly one of the two is given and a
    /// `now` is an RFC 3339 instant.
    pub fn into_request(self) -> Result<MoveClockRequest, ApiError> {
        match (self.advance_days, self.now) {
            (Some(days), None) => Ok(MoveClockRequest {
                advance_days: days,
                now: String::new(),
            }),
            (None, Some(now)) => {
                let now = now.trim().to_string();
                if parse_instant(&now).is_none() {
                    return Err(ApiError::invalid_input("now must be an RFC 3339 instant"));
                }
                Ok(MoveClockRequest {
                    advance_days: 0,
                    now,
                })
            }
            _ => Err(ApiError::invalid_input(
                "give exactly one of advance_days and now",
            )),
        }
    }
}

/// Moves every clock in the order given to the state, one after the other, so that the
/// jobs of one service see the moves of the ones before it; answers the latest `now`
/// reported. A service that refuses (a `now` before its clock: clocks only move forward)
/// or is down stops the walk with its error; the clocks moved so far stay moved.
#[tracing::instrument(skip_all)]
pub async fn move_clock(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<MoveBody>,
) -> Result<Json<ClockView>, ApiError> {
    let request = body.into_request()?;
    let mut latest = String::new();
    for client in state.test_clocks() {
        let answer = client
            .clone()
            .r#move(state.rpc(request.clone()))
            .await?
            .into_inner();
        // RFC 3339 UTC of one fixed width: text order is time order.
        if answer.now > latest {
            latest = answer.now;
        }
    }
    tracing::warn!(now = %latest, "test clock moved");
    Ok(Json(ClockView { now: latest }))
}

/// The test clock, routed only for a run with test clocks (API.md "Operations and tests").
pub(crate) fn routes() -> Routes {
    Routes::new()
        .served_when(Served::TestClock)
        .post("/api/v1/test/clock", move_clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(advance_days: Option<u32>, now: Option<&str>) -> MoveBody {
        MoveBody {
            advance_days,
            now: now.map(str::to_string),
        }
    }

    #[test]
    fn exactly_one_of_advance_days_and_now() {
        assert_eq!(body(Some(8), None).into_request().unwrap().advance_days, 8);
        let at = body(None, Some("2026-04-09T01:00:00Z"))
            .into_request()
            .unwrap();
        assert_eq!(at.now, "2026-04-09T01:00:00Z");
        for wrong in [
            body(None, None),
            body(Some(1), Some("2026-04-09T01:00:00Z")),
            body(None, Some("next tuesday")),
            body(None, Some("2026-04-09")),
        ] {
            assert_eq!(
                wrong.into_request().unwrap_err().code(),
                kitsuki_proto::ErrorCode::InvalidInput
            );
        }
    }
}
