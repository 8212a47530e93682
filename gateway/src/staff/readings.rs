//! The staff page that corrects a title's readings (issue 10): what the catalogue holds
//! (the title's reading, the author's, and whether they were generated or given), and a
//! form that posts the correction, without JavaScript. Reached from the title page by
//! staff with the admin role, whose alone it is (rule S3); the correction itself is the
//! API's (`staff::admin::correct_readings`), refusals and all.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use kitsuki_proto::TitleId;
use kitsuki_proto::catalog::TitleSummary;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::catalog::api::{fetch_title, title_in_path};
use crate::staff::admin::{ReadingsBody, correct_readings};
use crate::staff::pages::StaffPage;
use crate::staff::session::Staff;
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::forms::{self, form_page, refused};
use crate::web::route_table::Routes;
use crate::web::{PageError, PageForm};

/// Where the staff page of a title's readings is.
pub fn readings_href(title_id: &str) -> String {
    format!("/staff/titles/{title_id}/readings")
}

/// How the page names a title's `reading_source`.
pub fn reading_source_label(source: &str) -> &'static str {
    match source {
        "generated" => "自動生成",
        "given" => "登録済み",
        _ => "読みなし",
    }
}

/// The form as posted; a missing field is an empty one.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct ReadingsForm {
    #[serde(default)]
    pub title_reading: String,
    #[serde(default)]
    pub author_reading: String,
}

/// What the page shows of the title.
#[derive(Debug, Serialize)]
struct TitleView {
    title_id: String,
    title: String,
    creators: String,
    title_reading: String,
    author_reading: String,
    source: &'static str,
}

impl TitleView {
    fn new(summary: &TitleSummary) -> TitleView {
        TitleView {
            title_id: summary.title_id.clone(),
            title: summary.title.clone(),
            creators: summary.creators.clone(),
            title_reading: summary.title_reading.clone(),
            author_reading: summary.author_reading.clone(),
            source: reading_source_label(&summary.reading_source),
        }
    }
}

fn page_context(
    title: &TitleView,
    form: &ReadingsForm,
    notice: Option<&str>,
    error: Option<&str>,
) -> minijinja::Value {
    context! {
        title => crate::web::templates::to_value(title),
        form => crate::web::templates::to_value(form),
        notice => notice,
        error => error,
    }
}

/// The title of the path, once the staff member is known to be allowed here (rule S3:
/// a clerk learns nothing, not even whether the title exists).
async fn admin_title(
    state: &AppState,
    staff: &Staff,
    path: Result<Path<String>, PathRejection>,
) -> Result<(TitleId, TitleSummary), PageError> {
    staff.require_admin()?;
    let id = title_in_path(path)?;
    let detail = fetch_title(state, Ok(Path(id.to_string()))).await?;
    let summary = detail.title.ok_or_else(|| {
        ApiError::internal(
            "catalog answered a title without its summary",
            &"TitleDetail.title missing",
        )
    })?;
    Ok((id, summary))
}

/// `GET /staff/titles/{title_id}/readings`.
pub async fn readings_form(
    State(state): State<AppState>,
    page: StaffPage,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let (_, summary) = admin_title(&state, &page.staff, path).await?;
    let title = TitleView::new(&summary);
    let form = ReadingsForm {
        title_reading: title.title_reading.clone(),
        author_reading: title.author_reading.clone(),
    };
    Ok(form_page(
        "staff_readings.html",
        &page.layout,
        page_context(&title, &form, None, None),
    ))
}

/// `POST /staff/titles/{title_id}/readings`: the correction, then the page again with
/// what is now stored, or with the refusal and what was typed.
#[tracing::instrument(skip_all, fields(actor = %page.staff.username))]
pub async fn readings_submit(
    State(state): State<AppState>,
    page: StaffPage,
    path: Result<Path<String>, PathRejection>,
    PageForm(form): PageForm<ReadingsForm>,
) -> Result<Response, PageError> {
    let (id, summary) = admin_title(&state, &page.staff, path).await?;
    let mut title = TitleView::new(&summary);
    let body = ReadingsBody {
        title_reading: form.title_reading.trim().to_string(),
        author_reading: Some(form.author_reading.trim().to_string()),
    };
    Ok(
        match correct_readings(&state, &page.staff, &id, body).await {
            Ok(stored) => {
                title.title_reading = stored.title_reading.clone();
                title.author_reading = stored.author_reading.clone();
                title.source = reading_source_label(&stored.reading_source);
                let form = ReadingsForm {
                    title_reading: stored.title_reading,
                    author_reading: stored.author_reading,
                };
                form_page(
                    "staff_readings.html",
                    &page.layout,
                    page_context(&title, &form, Some("読みを修正しました。"), None),
                )
            }
            Err(err) => forms::staff_failure(&err).unwrap_or_else(|| {
                refused(
                    &err,
                    "staff_readings.html",
                    &page.layout,
                    page_context(&title, &form, None, Some(err.code().message_ja())),
                )
            }),
        },
    )
}

/// The link of the title page to this one, for staff with the admin role only.
pub fn link_for(staff: Option<&Staff>, title_id: &str) -> Option<String> {
    staff
        .filter(|s| s.require_admin().is_ok())
        .map(|_| readings_href(title_id))
}

/// The catalogue administration page of readings (rule S3: the admin role).
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/staff/titles/{title_id}/readings", readings_form)
        .post("/staff/titles/{title_id}/readings", readings_submit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staff::session::ADMIN_ROLE;
    use crate::web::session::Secret;

    fn staff(role: &str) -> Staff {
        Staff {
            username: "yamada".into(),
            branches: vec!["yamaga".into()],
            role: role.into(),
            token: Secret::new("t"),
        }
    }

    #[test]
    fn the_source_of_a_reading_is_named_as_staff_know_it() {
        assert_eq!(reading_source_label("generated"), "自動生成");
        assert_eq!(reading_source_label("given"), "登録済み");
        assert_eq!(reading_source_label(""), "読みなし");
    }

    #[test]
    fn s3_only_admin_staff_get_the_link_from_the_title_page() {
        let id = crate::test_support::TITLE_ID;
        assert_eq!(
            link_for(Some(&staff(ADMIN_ROLE)), id),
            Some(format!("/staff/titles/{id}/readings"))
        );
        assert_eq!(link_for(Some(&staff("staff")), id), None);
        assert_eq!(link_for(None, id), None);
    }
}
