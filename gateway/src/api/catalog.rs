//! `GET /api/v1/titles` and `GET /api/v1/titles/{title_id}`: the catalogue as JSON.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use kitsuki_proto::catalog::GetTitleRequest;
use kitsuki_proto::{ErrorCode, TitleId};

use crate::error::{ApiError, Lang};
use crate::extract::ApiQuery;
use crate::search::{RawSearchParams, SearchParams};
use crate::state::AppState;
use crate::views::{SearchResultView, TitleDetailView};

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
    let id = path
        .ok()
        .and_then(|Path(id)| TitleId::parse(&id).ok())
        .ok_or_else(|| ApiError::new(ErrorCode::TitleNotFound))?;
    let detail = state
        .catalog()
        .get_title(state.rpc(GetTitleRequest {
            title_id: id.to_string(),
        }))
        .await
        .map_err(|status| match ApiError::from_status(&status) {
            // Whatever "not found" the catalogue says, for this path it is the title.
            e if e.code() == ErrorCode::NotFound => ApiError::new(ErrorCode::TitleNotFound),
            e => e,
        })?
        .into_inner();
    Ok(detail)
}
