//! The branch counter's patron work (rules S2, P2–P4) for staff assigned to the branch of
//! the path (rule S3): registering a patron and enabling web service, which issues the
//! temporary password shown once.
//!
//! The gateway refuses a staff member not assigned to `{branch}` with 403 before asking
//! anything; patron-account checks it again with the `staff_token` it is given, and records
//! who acted where.

use axum::Json;
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::{StatusCode, request::Parts};
use axum::response::IntoResponse;
use kitsuki_proto::patron::{
    EnableWebServiceRequest, EnableWebServiceResponse, RegisterPatronRequest,
};
use kitsuki_proto::{Branch, CardNumber, ErrorCode};
use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use crate::staff::session::Staff;
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::extract::ApiJson;
use crate::web::route_table::Routes;

/// Rule P2: the kinds of identity document a counter accepts (the kind is stored, never
/// the number), with the names staff read on the form.
pub const ID_DOCUMENTS: &[(&str, &str)] = &[
    ("driving_licence", "運転免許証"),
    ("health_insurance", "健康保険証"),
    ("student_card", "学生証"),
    ("residence_card", "在留カード"),
    ("my_number_card", "マイナンバーカード"),
    ("passport", "パスポート"),
    ("other", "その他（住基カードなど）"),
];

/// The staff member of a counter request and the branch of its path, already checked:
/// `{branch}` is one of rule B1's (else 400 `invalid_branch`) and the staff member is
/// assigned to it (else 403 `forbidden`, rule S3). An extractor, so the refusal comes
/// before the body is read.
#[derive(Debug, Clone)]
pub struct CounterStaff {
    pub staff: Staff,
    pub branch: Branch,
}

impl FromRequestParts<AppState> for CounterStaff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let staff = Staff::from_request_parts(parts, state).await?;
        let branch = path_param(parts, state, "branch").await?;
        let branch = Branch::parse(&branch)?;
        staff.require_branch(branch)?;
        Ok(CounterStaff { staff, branch })
    }
}

/// A [`CounterStaff`] and the `{card}` of the path (rule P1; else 400
/// `invalid_card_number`).
#[derive(Debug, Clone)]
pub struct CounterCard {
    pub counter: CounterStaff,
    pub card: CardNumber,
}

impl FromRequestParts<AppState> for CounterCard {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let counter = CounterStaff::from_request_parts(parts, state).await?;
        let card = CardNumber::parse(&path_param(parts, state, "card").await?)?;
        Ok(CounterCard { counter, card })
    }
}

/// One parameter of the matched path.
pub async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|r| ApiError::invalid_input(r.body_text()))?;
    params
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
        .ok_or_else(|| ApiError::invalid_input(format!("missing path parameter {name}")))
}

/// `POST /api/v1/branches/{branch}/patrons`, and the counter page's form (where an
/// untouched email field is empty).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct NewPatronBody {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub name_reading: String,
    #[serde(default)]
    pub birth_date: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub id_document: String,
}

impl NewPatronBody {
    /// Checks what the gateway can tell alone: names present, a real `YYYY-MM-DD` date,
    /// a known document kind. Age (rule P4) and the address (P7) are patron-account's.
    pub fn into_request(
        self,
        branch: Branch,
        staff: &Staff,
    ) -> Result<RegisterPatronRequest, ApiError> {
        let name = self.name.trim().to_string();
        if name.is_empty() {
            return Err(ApiError::invalid_input("name must not be empty"));
        }
        let name_reading = self.name_reading.trim().to_string();
        if name_reading.is_empty() {
            return Err(ApiError::invalid_input("name_reading must not be empty"));
        }
        let birth_date = self.birth_date.trim();
        let date = Date::parse(birth_date, format_description!("[year]-[month]-[day]"))
            .map_err(|_| ApiError::new(ErrorCode::InvalidBirthDate))?;
        let id_document = self.id_document.trim();
        if !ID_DOCUMENTS.iter().any(|(code, _)| *code == id_document) {
            return Err(ApiError::new(ErrorCode::InvalidIdDocument));
        }
        Ok(RegisterPatronRequest {
            branch: branch.code().to_string(),
            name,
            name_reading,
            birth_date: date.to_string(),
            email: self.email.map(|e| e.trim().to_string()).unwrap_or_default(),
            id_document: id_document.to_string(),
            staff_token: staff.token.expose().to_string(),
        })
    }
}

/// Registers a patron (rule P2) and answers the new card number.
pub async fn register(
    state: &AppState,
    counter: &CounterStaff,
    body: NewPatronBody,
) -> Result<String, ApiError> {
    let request = body.into_request(counter.branch, &counter.staff)?;
    let created = state
        .patron()
        .register_patron(state.rpc(request))
        .await?
        .into_inner();
    tracing::info!(
        actor = %counter.staff.username,
        branch = counter.branch.code(),
        card = %created.card_number,
        "patron registered"
    );
    Ok(created.card_number)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedPatronView {
    pub card_number: String,
}

#[tracing::instrument(skip_all, fields(actor = %counter.staff.username))]
pub async fn register_patron(
    State(state): State<AppState>,
    counter: CounterStaff,
    ApiJson(body): ApiJson<NewPatronBody>,
) -> Result<impl IntoResponse, ApiError> {
    let card_number = register(&state, &counter, body).await?;
    Ok((StatusCode::CREATED, Json(CreatedPatronView { card_number })))
}

/// Rules P3, P4: enables web service for `card` and answers the temporary password, which
/// nobody can ask for again.
pub async fn enable(
    state: &AppState,
    counter: &CounterStaff,
    card: &CardNumber,
) -> Result<EnableWebServiceResponse, ApiError> {
    let answer = state
        .patron()
        .enable_web_service(state.rpc(EnableWebServiceRequest {
            branch: counter.branch.code().to_string(),
            card_number: card.to_string(),
            staff_token: counter.staff.token.expose().to_string(),
        }))
        .await?
        .into_inner();
    tracing::info!(
        actor = %counter.staff.username,
        branch = counter.branch.code(),
        card = %card,
        "web service enabled"
    );
    Ok(answer)
}

/// The answer of enabling: API.md's `temporary_password`, with the card and name the slip
/// prints. No `Debug`: it holds a password.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TemporaryPasswordView {
    pub temporary_password: String,
    pub card_number: String,
    pub name: String,
}

#[tracing::instrument(skip_all, fields(actor = %counter.staff.username))]
pub async fn enable_web_service(
    State(state): State<AppState>,
    CounterCard { counter, card }: CounterCard,
) -> Result<Json<TemporaryPasswordView>, ApiError> {
    let answer = enable(&state, &counter, &card).await?;
    Ok(Json(TemporaryPasswordView {
        card_number: if answer.card_number.is_empty() {
            card.to_string()
        } else {
            answer.card_number
        },
        name: answer.name,
        temporary_password: answer.temporary_password,
    }))
}

/// The counter's patron registration in the JSON API.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/v1/branches/{branch}/patrons", register_patron)
        .post(
            "/api/v1/branches/{branch}/patrons/{card}/web-service",
            enable_web_service,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::session::Secret;

    fn clerk() -> Staff {
        Staff {
            username: "yamada".into(),
            branches: vec!["yamaga".into()],
            role: "staff".into(),
            token: Secret::new("staff-token"),
        }
    }

    fn body() -> NewPatronBody {
        NewPatronBody {
            name: " 杵築 花子 ".into(),
            name_reading: "キツキ ハナコ".into(),
            birth_date: "2010-04-02".into(),
            email: Some(" ".into()),
            id_document: "student_card".into(),
        }
    }

    #[test]
    fn p2_a_new_patron_carries_the_document_kind_and_the_acting_staff() {
        let r = body().into_request(Branch::Yamaga, &clerk()).unwrap();
        assert_eq!(r.name, "杵築 花子");
        assert_eq!(r.branch, "yamaga");
        assert_eq!(r.birth_date, "2010-04-02");
        assert_eq!(r.email, "");
        assert_eq!(r.id_document, "student_card");
        assert_eq!(r.staff_token, "staff-token");
    }

    #[test]
    fn p2_p4_bad_inputs_get_their_codes() {
        let code = |b: NewPatronBody| b.into_request(Branch::Yamaga, &clerk()).unwrap_err().code();
        for date in ["2010-02-30", "2010/04/02", "", "H22-04-02"] {
            let b = NewPatronBody {
                birth_date: date.into(),
                ..body()
            };
            assert_eq!(code(b), ErrorCode::InvalidBirthDate, "{date}");
        }
        for doc in ["", "licence number 123", "passport "] {
            let b = NewPatronBody {
                id_document: doc.into(),
                ..body()
            };
            if doc.trim() == "passport" {
                assert!(b.into_request(Branch::Yamaga, &clerk()).is_ok());
            } else {
                assert_eq!(code(b), ErrorCode::InvalidIdDocument, "{doc}");
            }
        }
        let b = NewPatronBody {
            name: "  ".into(),
            ..body()
        };
        assert_eq!(code(b), ErrorCode::InvalidInput);
    }
}
