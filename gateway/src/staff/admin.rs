//! Catalogue administration (API.md "Catalogue administration"): new titles, new items
//! and new staff accounts, for staff with the admin role only.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};

use crate::catalog::api::{title_in_path, title_refusal};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use kitsuki_proto::catalog::{
    CreateItemRequest, CreateTitleRequest, MaterialType, NewTitle, SetReadingsRequest,
};
use kitsuki_proto::patron::CreateStaffRequest;
use kitsuki_proto::{Barcode, Branch, TitleId};
use serde::{Deserialize, Serialize};

use crate::catalog::views::{CreatedItemView, ItemView, parse_material};
use crate::staff::session::{ADMIN_ROLE, Admin, Staff};
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::ApiJson;
use crate::web::route_table::Routes;

/// `POST /api/v1/admin/titles`.
#[derive(Debug, Deserialize)]
pub struct NewTitleBody {
    pub title: String,
    pub title_reading: Option<String>,
    pub author: Option<String>,
    pub publisher: Option<String>,
    pub year: Option<i32>,
    pub isbn: Option<String>,
    /// The statement of responsibility (責任表示), as a record would give it.
    pub responsibility: Option<String>,
    /// The NDC class number (`913.6`).
    pub ndc: Option<String>,
    #[serde(rename = "type")]
    pub material: String,
}

fn text(value: Option<String>) -> String {
    value.map(|v| v.trim().to_string()).unwrap_or_default()
}

impl NewTitleBody {
    /// Checks what the gateway can tell alone; the catalogue checks the rest (the ISBN).
    pub fn into_new_title(self) -> Result<NewTitle, ApiError> {
        let title = self.title.trim().to_string();
        if title.is_empty() {
            return Err(ApiError::invalid_input("title must not be empty"));
        }
        let material: MaterialType = parse_material(self.material.trim())
            .ok_or_else(|| ApiError::invalid_input("type must be book, magazine or av"))?;
        if let Some(year) = self.year
            && !(1..=9999).contains(&year)
        {
            return Err(ApiError::invalid_input("year must be from 1 to 9999"));
        }
        Ok(NewTitle {
            title,
            title_reading: text(self.title_reading),
            author: text(self.author),
            publisher: text(self.publisher),
            year: self.year,
            isbn: text(self.isbn),
            r#type: material as i32,
            search_aliases: Vec::new(),
            source_id: String::new(),
            responsibility: text(self.responsibility),
            ndc: text(self.ndc),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct CreatedTitle {
    pub title_id: String,
}

#[tracing::instrument(skip_all, fields(actor = %staff.username))]
pub async fn create_title(
    State(state): State<AppState>,
    Admin(staff): Admin,
    ApiJson(body): ApiJson<NewTitleBody>,
) -> Result<impl IntoResponse, ApiError> {
    let title = body.into_new_title()?;
    // CreateTitleRequest has no actor field yet, so the audit record (rule S3) of this
    // action is the log line of this span.
    let created = state
        .catalog()
        .create_title(state.rpc(CreateTitleRequest { title: Some(title) }))
        .await?
        .into_inner();
    tracing::info!(title_id = %created.title_id, "title created");
    let location = format!("/api/v1/titles/{}", created.title_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(CreatedTitle {
            title_id: created.title_id,
        }),
    ))
}

/// `PUT /api/v1/admin/titles/{title_id}/readings`: staff with the admin role (rule S3, the
/// [`Admin`] extractor) correct a title's readings.
#[derive(Debug, Deserialize)]
pub struct ReadingsBody {
    pub title_reading: String,
    pub author_reading: Option<String>,
}

/// The readings as stored after a correction.
#[derive(Debug, Serialize)]
pub struct ReadingsView {
    pub title_id: String,
    pub title_reading: String,
    pub author_reading: String,
    pub reading_source: String,
}

#[tracing::instrument(skip_all, fields(actor = %staff.username))]
pub async fn set_readings(
    State(state): State<AppState>,
    Admin(staff): Admin,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<ReadingsBody>,
) -> Result<Json<ReadingsView>, ApiError> {
    let id = title_in_path(path)?;
    correct_readings(&state, &staff, &id, body).await.map(Json)
}

/// A correction of a title's readings by `staff`, for the API and the staff page alike:
/// rule S3 (the admin role only), then the catalogue's own checks (kana, a known title).
#[tracing::instrument(skip_all, fields(actor = %staff.username, title_id = %id))]
pub async fn correct_readings(
    state: &AppState,
    staff: &Staff,
    id: &TitleId,
    body: ReadingsBody,
) -> Result<ReadingsView, ApiError> {
    staff.require_admin()?;
    let r = state
        .catalog()
        .set_readings(state.rpc(SetReadingsRequest {
            title_id: id.to_string(),
            title_reading: body.title_reading,
            author_reading: text(body.author_reading),
        }))
        .await
        .map_err(|status| title_refusal(&status))?
        .into_inner();
    // The audit record (rule S3) of this action is the log line of this span.
    tracing::info!("readings corrected");
    Ok(ReadingsView {
        title_id: r.title_id,
        title_reading: r.title_reading,
        author_reading: r.author_reading,
        reading_source: r.reading_source,
    })
}

/// `POST /api/v1/admin/items`.
#[derive(Debug, Deserialize)]
pub struct NewItemBody {
    pub title_id: String,
    pub barcode: String,
    pub branch: String,
    pub call_number: Option<String>,
}

impl NewItemBody {
    /// Rule M1: a valid barcode (upper-cased); rule B1: one of the three branches.
    pub fn into_request(self) -> Result<CreateItemRequest, ApiError> {
        let title_id = TitleId::parse(&self.title_id)?;
        let barcode = Barcode::parse(&self.barcode)?;
        let branch = Branch::parse(&self.branch)?;
        Ok(CreateItemRequest {
            title_id: title_id.to_string(),
            barcode: barcode.to_string(),
            branch: branch.code().to_string(),
            call_number: text(self.call_number),
        })
    }
}

#[tracing::instrument(skip_all, fields(actor = %staff.username))]
pub async fn create_item(
    State(state): State<AppState>,
    Admin(staff): Admin,
    ApiJson(body): ApiJson<NewItemBody>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body.into_request()?;
    // CreateItemRequest has no actor field yet; see create_title.
    let item = state
        .catalog()
        .create_item(state.rpc(request))
        .await?
        .into_inner();
    tracing::info!(barcode = %item.barcode, branch = %item.branch, "item created");
    // The 201 means circulation knows the item too: it can be lent and held at once.
    crate::circulation::tell_new_item(&state, &item).await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedItemView {
            title_id: item.title_id.clone(),
            item: ItemView::new(&item),
        }),
    ))
}

/// `POST /api/v1/admin/staff`. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct NewStaffBody {
    pub username: String,
    pub password: String,
    pub branches: Vec<String>,
    pub role: String,
}

/// The answer to a new staff account: who was created, never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedStaff {
    pub username: String,
    pub branches: Vec<String>,
    pub role: String,
}

impl NewStaffBody {
    /// Rule S3: staff are scoped to at least one of the three branches, as `staff` or
    /// `admin`. The password's strength is patron-account's to judge.
    pub fn into_request(self, actor: &str) -> Result<CreateStaffRequest, ApiError> {
        let username = self.username.trim().to_string();
        if username.is_empty() {
            return Err(ApiError::invalid_input("username must not be empty"));
        }
        if self.password.is_empty() {
            return Err(ApiError::invalid_input("password must not be empty"));
        }
        let role = self.role.trim();
        if role != "staff" && role != ADMIN_ROLE {
            return Err(ApiError::invalid_input("role must be staff or admin"));
        }
        let mut branches = Vec::new();
        for code in &self.branches {
            let branch = Branch::parse(code)?;
            if !branches.contains(&branch) {
                branches.push(branch);
            }
        }
        if branches.is_empty() {
            return Err(ApiError::invalid_input(
                "branches must name at least one branch",
            ));
        }
        branches.sort();
        Ok(CreateStaffRequest {
            username,
            password: self.password,
            branches: branches.iter().map(|b| b.code().to_string()).collect(),
            role: role.to_string(),
            actor: actor.to_string(),
        })
    }
}

#[tracing::instrument(skip_all, fields(actor = %staff.username))]
pub async fn create_staff(
    State(state): State<AppState>,
    Admin(staff): Admin,
    ApiJson(body): ApiJson<NewStaffBody>,
) -> Result<impl IntoResponse, ApiError> {
    let request = body.into_request(&staff.username)?;
    let created = CreatedStaff {
        username: request.username.clone(),
        branches: request.branches.clone(),
        role: request.role.clone(),
    };
    state.patron().create_staff(state.rpc(request)).await?;
    tracing::info!(username = %created.username, role = %created.role, "staff account created");
    Ok((StatusCode::CREATED, Json(created)))
}

/// Catalogue and staff administration in the JSON API (rule S3).
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/v1/admin/titles", create_title)
        .put("/api/v1/admin/titles/{title_id}/readings", set_readings)
        .post("/api/v1/admin/items", create_item)
        .post("/api/v1/admin/staff", create_staff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitsuki_proto::ErrorCode;

    fn title_body(title: &str, material: &str, year: Option<i32>) -> NewTitleBody {
        NewTitleBody {
            title: title.into(),
            title_reading: Some(" ボッチャン ".into()),
            author: None,
            publisher: None,
            year,
            isbn: None,
            responsibility: None,
            ndc: None,
            material: material.into(),
        }
    }

    #[test]
    fn a_new_title_needs_a_title_and_a_known_type() {
        let t = title_body(" 坊っちゃん ", "book", Some(1906))
            .into_new_title()
            .unwrap();
        assert_eq!(t.title, "坊っちゃん");
        assert_eq!(t.title_reading, "ボッチャン");
        assert_eq!(t.r#type, MaterialType::Book as i32);
        let code = |b: NewTitleBody| b.into_new_title().unwrap_err().code();
        assert_eq!(
            code(title_body("  ", "book", None)),
            ErrorCode::InvalidInput
        );
        assert_eq!(code(title_body("x", "dvd", None)), ErrorCode::InvalidInput);
        assert_eq!(
            code(title_body("x", "book", Some(0))),
            ErrorCode::InvalidInput
        );
    }

    #[test]
    fn a_new_item_m1_barcode_is_upper_cased_and_b1_branch_checked() {
        let body = |barcode: &str, branch: &str, title_id: &str| NewItemBody {
            title_id: title_id.into(),
            barcode: barcode.into(),
            branch: branch.into(),
            call_number: None,
        };
        let id = crate::test_support::TITLE_ID;
        let r = body("kt-001", "Yamaga", id).into_request().unwrap();
        assert_eq!(
            (r.barcode.as_str(), r.branch.as_str()),
            ("KT-001", "yamaga")
        );
        let code = |b: NewItemBody| b.into_request().unwrap_err().code();
        assert_eq!(
            code(body("KT 001", "yamaga", id)),
            ErrorCode::InvalidBarcode
        );
        assert_eq!(code(body("KT-001", "oita", id)), ErrorCode::InvalidBranch);
        assert_eq!(
            code(body("KT-001", "ota", "nope")),
            ErrorCode::TitleNotFound
        );
    }

    #[test]
    fn a_new_staff_account_s3_has_a_role_and_branches_and_records_the_actor() {
        let body = |role: &str, branches: &[&str]| NewStaffBody {
            username: "sato".into(),
            password: "correct horse".into(),
            branches: branches.iter().map(|b| b.to_string()).collect(),
            role: role.into(),
        };
        let r = body("staff", &["ota", "kitsuki", "ota"])
            .into_request("admin")
            .unwrap();
        assert_eq!(r.branches, vec!["kitsuki", "ota"]);
        assert_eq!(r.actor, "admin");
        let code = |b: NewStaffBody| b.into_request("admin").unwrap_err().code();
        assert_eq!(code(body("boss", &["ota"])), ErrorCode::InvalidInput);
        assert_eq!(code(body("staff", &[])), ErrorCode::InvalidInput);
        assert_eq!(code(body("staff", &["oita"])), ErrorCode::InvalidBranch);
    }
}
