//! The patron-account service's gRPC face: proto ⇄ service, every refusal a coded status
//! (and `retry-after` metadata with `too_many_attempts`, rule P13).

use kitsuki_proto::patron as pb;
use kitsuki_proto::patron::patron_service_server::{PatronService, PatronServiceServer};
use kitsuki_proto::{Branch, CardNumber, ErrorCode, ServiceError, text};
use tonic::{Request, Response, Status};

use crate::domain::patron::RegistrationForm;
use crate::service::PatronAccounts;
use crate::staff::{Role, StaffIdentity};

#[derive(Debug, Clone)]
pub struct PatronGrpc {
    accounts: PatronAccounts,
}

impl PatronGrpc {
    /// Takes the service ([`PatronAccounts::open`]); a bare `StaffAccounts` also converts,
    /// into the service with the default configuration.
    pub fn new(accounts: impl Into<PatronAccounts>) -> Self {
        PatronGrpc {
            accounts: accounts.into(),
        }
    }

    pub fn into_server(self) -> PatronServiceServer<PatronGrpc> {
        PatronServiceServer::new(self)
    }
}

fn empty() -> Response<pb::Empty> {
    Response::new(pb::Empty {})
}

#[tonic::async_trait]
impl PatronService for PatronGrpc {
    #[tracing::instrument(skip_all)]
    async fn staff_login(
        &self,
        req: Request<pb::StaffLoginRequest>,
    ) -> Result<Response<pb::SessionGranted>, Status> {
        let r = req.into_inner();
        text::check("username", &r.username, text::limits::USERNAME)?;
        let g = self
            .accounts
            .staff()
            .login(r.username.trim(), &r.password, &r.client_address)
            .await?;
        Ok(Response::new(pb::SessionGranted {
            token: g.token,
            expires_at: g.expires_at,
            temporary_password: false,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn staff_session(
        &self,
        req: Request<pb::SessionToken>,
    ) -> Result<Response<pb::StaffIdentity>, Status> {
        let who = self
            .accounts
            .staff()
            .session(&req.into_inner().token)
            .await?;
        Ok(Response::new(pb::StaffIdentity {
            username: who.username,
            branches: who.branches.iter().map(|b| b.code().to_string()).collect(),
            role: who.role.code().to_string(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn staff_logout(
        &self,
        req: Request<pb::SessionToken>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.accounts
            .staff()
            .logout(&req.into_inner().token)
            .await?;
        Ok(empty())
    }

    #[tracing::instrument(skip_all)]
    async fn create_staff(
        &self,
        req: Request<pb::CreateStaffRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = req.into_inner();
        text::check("username", &r.username, text::limits::USERNAME)?;
        let role = Role::parse(&r.role)
            .ok_or_else(|| ServiceError::with_detail(ErrorCode::InvalidInput, "role"))?;
        let branches = r
            .branches
            .iter()
            .map(|b| Branch::parse(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServiceError::from)?;
        let who = StaffIdentity {
            username: r.username.trim().to_string(),
            branches,
            role,
        };
        self.accounts
            .staff()
            .create(&who, &r.password, &r.actor)
            .await?;
        Ok(empty())
    }

    #[tracing::instrument(skip_all)]
    async fn register_patron(
        &self,
        req: Request<pb::RegisterPatronRequest>,
    ) -> Result<Response<pb::RegisterPatronResponse>, Status> {
        let r = req.into_inner();
        let branch = Branch::parse(&r.branch)?;
        // Before anything is stored (API.md "Text fields"): PostgreSQL cannot store a NUL.
        text::check("name", &r.name, text::limits::PERSON_NAME)?;
        text::check("name_reading", &r.name_reading, text::limits::PERSON_NAME)?;
        text::check("email", &r.email, text::limits::EMAIL)?;
        let form = RegistrationForm {
            name: r.name,
            name_reading: r.name_reading,
            birth_date: r.birth_date,
            id_document: r.id_document,
            email: r.email,
        };
        let card = self
            .accounts
            .register_patron(&r.staff_token, branch, &form)
            .await?;
        Ok(Response::new(pb::RegisterPatronResponse {
            card_number: card.to_string(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn enable_web_service(
        &self,
        req: Request<pb::EnableWebServiceRequest>,
    ) -> Result<Response<pb::EnableWebServiceResponse>, Status> {
        let r = req.into_inner();
        let branch = Branch::parse(&r.branch)?;
        let t = self
            .accounts
            .enable_web_service(&r.staff_token, branch, &r.card_number)
            .await?;
        Ok(Response::new(pb::EnableWebServiceResponse {
            temporary_password: t.temporary_password,
            card_number: t.card_number,
            name: t.name,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn patron_login(
        &self,
        req: Request<pb::PatronLoginRequest>,
    ) -> Result<Response<pb::SessionGranted>, Status> {
        let r = req.into_inner();
        let g = self
            .accounts
            .login(&r.card_number, &r.password, &r.client_address)
            .await?;
        Ok(Response::new(pb::SessionGranted {
            token: g.token,
            expires_at: g.expires_at,
            temporary_password: g.temporary_password,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn patron_session(
        &self,
        req: Request<pb::SessionToken>,
    ) -> Result<Response<pb::PatronProfile>, Status> {
        let p = self.accounts.session(&req.into_inner().token).await?;
        Ok(Response::new(pb::PatronProfile {
            card_number: p.card_number,
            name: p.name,
            email: p.email.unwrap_or_default(),
            email_verified: p.email_verified,
            pending_email: p.pending_email.unwrap_or_default(),
            temporary_password: p.temporary_password,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn patron_logout(
        &self,
        req: Request<pb::SessionToken>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.accounts.logout(&req.into_inner().token).await?;
        Ok(empty())
    }

    #[tracing::instrument(skip_all)]
    async fn change_password(
        &self,
        req: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = req.into_inner();
        self.accounts
            .change_password(&r.token, &r.current_password, &r.new_password)
            .await?;
        Ok(empty())
    }

    #[tracing::instrument(skip_all)]
    async fn request_email_change(
        &self,
        req: Request<pb::RequestEmailChangeRequest>,
    ) -> Result<Response<pb::RequestEmailChangeResponse>, Status> {
        let r = req.into_inner();
        text::check("email", &r.email, text::limits::EMAIL)?;
        let a = self
            .accounts
            .request_email_change(&r.token, &r.email)
            .await?;
        Ok(Response::new(pb::RequestEmailChangeResponse {
            carrier_notice: a.carrier_notice,
            sender_address: a.sender_address,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn verify_email(
        &self,
        req: Request<pb::VerifyEmailRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.accounts
            .verify_email(&req.into_inner().verification_token)
            .await?;
        Ok(empty())
    }

    #[tracing::instrument(skip_all)]
    async fn request_password_reset(
        &self,
        req: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = req.into_inner();
        text::check("email", &r.email, text::limits::EMAIL)?;
        self.accounts
            .request_password_reset(&r.card_number, &r.email, &r.client_address)
            .await?;
        Ok(empty())
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_password_reset(
        &self,
        req: Request<pb::ConfirmPasswordResetRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = req.into_inner();
        self.accounts
            .confirm_password_reset(&r.reset_token, &r.new_password)
            .await?;
        Ok(empty())
    }

    #[tracing::instrument(skip_all)]
    async fn get_contact(
        &self,
        req: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let r = req.into_inner();
        let card = CardNumber::parse(&r.card_number)?;
        let id = r.verification_id.trim();
        let c = self
            .accounts
            .contact(&card, (!id.is_empty()).then_some(id))
            .await?;
        Ok(Response::new(pb::Contact {
            card_number: c.card_number,
            name: c.name,
            email: c.email,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_patron_facts(
        &self,
        req: Request<pb::GetPatronFactsRequest>,
    ) -> Result<Response<pb::PatronFacts>, Status> {
        let card = CardNumber::parse(&req.into_inner().card_number)?;
        let mut conn = self.accounts.db().pool.acquire().await.map_err(|e| {
            tracing::error!(error = %e, "patron failure while connecting");
            ServiceError::internal()
        })?;
        let patron = crate::store::get_patron(&mut conn, card.as_str())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "patron failure while reading a patron");
                ServiceError::internal()
            })?;
        Ok(Response::new(match patron {
            None => pb::PatronFacts::default(),
            Some(p) => pb::PatronFacts {
                exists: true,
                web_enabled: p.web_enabled,
                // Rule P9: `email` is only ever the verified address in force.
                email_verified: p.email.is_some() && p.email_verified_at.is_some(),
                // Rule V1: no patron can opt in to a reading history yet, so none is kept.
                reading_history: false,
            },
        }))
    }
}
