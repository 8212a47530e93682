//! `GET /api/v1/titles` and `GET /api/v1/titles/{title_id}`: the catalogue as JSON.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use kitsuki_proto::catalog::GetTitleRequest;
use kitsuki_proto::{ErrorCode, TitleId};

use crate::catalog::search::{RawSearchParams, SearchParams};
use crate::catalog::search_view::SearchResultView;
use crate::catalog::views::TitleDetailView;
use crate::state::AppState;
use crate::web::error::{ApiError, Lang};
use crate::web::extract::ApiQuery;
use crate::web::route_table::Routes;

#[tracing::instrument(skip_all)]
pub async fn search_titles(
    State(state): State<AppState>,
    lang: Lang,
    ApiQuery(raw): ApiQuery<RawSearchParams>,
) -> Result<Json<SearchResultView>, ApiError> {
    let params = SearchParams::parse(&raw)?;
    let response = state
        .catalog()
        .search_titles(state.rpc(params.to_request()))
        .await?
        .into_inner();
    Ok(Json(SearchResultView::new(
        &response,
        params.page,
        params.per_page,
        lang,
    )))
}

#[tracing::instrument(skip_all)]
pub async fn get_title(
    State(state): State<AppState>,
    lang: Lang,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TitleDetailView>, ApiError> {
    let detail = fetch_title(&state, path).await?;
    TitleDetailView::new(&detail, lang)
        .map(Json)
        .ok_or_else(|| {
            ApiError::internal(
                "catalog answered a title without its summary",
                &"TitleDetail.title missing",
            )
        })
}

/// Reads the id of a title path and asks the catalogue for it. An id that is not even a
/// UUID is a title that does not exist, not a malformed request (API.md: unknown id → 404).
pub async fn fetch_title(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<kitsuki_proto::catalog::TitleDetail, ApiError> {
    let id = title_in_path(path)?;
    let detail = state
        .catalog()
        .get_title(state.rpc(GetTitleRequest {
            title_id: id.to_string(),
        }))
        .await
        .map_err(|status| title_refusal(&status))?
        .into_inner();
    Ok(detail)
}

/// The title id of a `/titles/{title_id}` path: one that is not even a UUID is a title that
/// does not exist (404 `title_not_found`), not a malformed request.
pub fn title_in_path(path: Result<Path<String>, PathRejection>) -> Result<TitleId, ApiError> {
    path.ok()
        .and_then(|Path(id)| TitleId::parse(&id).ok())
        .ok_or_else(|| ApiError::new(ErrorCode::TitleNotFound))
}

/// The catalogue's refusal of a call about one title: whatever "not found" it says, for a
/// title's path it is the title.
pub fn title_refusal(status: &tonic::Status) -> ApiError {
    match ApiError::from_status(status) {
        e if e.code() == ErrorCode::NotFound => ApiError::new(ErrorCode::TitleNotFound),
        e => e,
    }
}

/// The catalogue's JSON API.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/titles", search_titles)
        .get("/api/v1/titles/{title_id}", get_title)
}
