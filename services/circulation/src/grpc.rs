//! The gRPC face of one branch instance: proto ⇄ validated ids, every refusal a coded status
//! (`kitsuki-error-code` metadata, see `kitsuki_proto::error`).

use kitsuki_proto::circulation as pb;
use kitsuki_proto::circulation::circulation_service_server::{
    CirculationService, CirculationServiceServer,
};
use kitsuki_proto::{Barcode, Branch, CardNumber, ErrorCode, ServiceError, TitleId};
use tonic::{Request, Response, Status};

use crate::domain::holdability::HoldOrigin;
use crate::service::{Circulation, HoldRequest, Requester};

/// gRPC server of one branch's circulation instance.
#[derive(Debug, Clone)]
pub struct CirculationGrpc {
    served: Served,
}

/// What a [`CirculationGrpc`] serves: an instance, or only a branch's name. The second is
/// transitional, for a binary that does not build the instance yet: it answers `BranchInfo`
/// and refuses everything else as unimplemented, as the skeleton did.
#[derive(Debug, Clone)]
pub enum Served {
    Instance(Circulation),
    BranchOnly(Branch),
}

impl From<Circulation> for Served {
    fn from(c: Circulation) -> Served {
        Served::Instance(c)
    }
}

impl From<Branch> for Served {
    fn from(b: Branch) -> Served {
        Served::BranchOnly(b)
    }
}

impl CirculationGrpc {
    /// Takes the instance ([`Circulation::open`]).
    pub fn new(served: impl Into<Served>) -> Self {
        CirculationGrpc {
            served: served.into(),
        }
    }

    pub fn into_server(self) -> CirculationServiceServer<CirculationGrpc> {
        CirculationServiceServer::new(self)
    }

    fn circulation(&self) -> Result<&Circulation, Status> {
        match &self.served {
            Served::Instance(c) => Ok(c),
            Served::BranchOnly(_) => Err(Status::unimplemented(
                "this circulation server was built without its instance",
            )),
        }
    }
}

/// A card number when one is given, `None` when the field is empty.
fn optional_card(s: &str) -> Result<Option<CardNumber>, ServiceError> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        Ok(Some(CardNumber::parse(s)?))
    }
}

fn hold_id(s: &str) -> Result<String, ServiceError> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return Err(ServiceError::new(ErrorCode::HoldNotFound));
    }
    Ok(s.to_string())
}

/// The patron (by card) or staff (by actor) behind a request that either may make.
fn requester<'a>(card: &'a Option<CardNumber>, actor: &'a str) -> Result<Requester<'a>, Status> {
    match card {
        Some(c) => Ok(Requester::Patron(c)),
        None if !actor.trim().is_empty() => Ok(Requester::Staff { actor }),
        None => {
            Err(ServiceError::with_detail(ErrorCode::InvalidInput, "card_number or actor").into())
        }
    }
}

fn desk_holds(holds: Vec<pb::DeskHold>) -> Response<pb::DeskHolds> {
    Response::new(pb::DeskHolds { holds })
}

#[tonic::async_trait]
impl CirculationService for CirculationGrpc {
    #[tracing::instrument(skip_all)]
    async fn checkout(
        &self,
        req: Request<pb::CheckoutRequest>,
    ) -> Result<Response<pb::Loan>, Status> {
        let r = req.into_inner();
        self.circulation()?.check_desk_branch(&r.branch)?;
        let card = CardNumber::parse(&r.card_number)?;
        let barcode = Barcode::parse(&r.barcode)?;
        Ok(Response::new(
            self.circulation()?
                .checkout(&card, &barcode, &r.actor)
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn checkin(
        &self,
        req: Request<pb::CheckinRequest>,
    ) -> Result<Response<pb::CheckinResponse>, Status> {
        let r = req.into_inner();
        self.circulation()?.check_desk_branch(&r.branch)?;
        let barcode = Barcode::parse(&r.barcode)?;
        Ok(Response::new(
            self.circulation()?.checkin(&barcode, &r.actor).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn renew(&self, req: Request<pb::RenewRequest>) -> Result<Response<pb::Loan>, Status> {
        let r = req.into_inner();
        let card = optional_card(&r.card_number)?;
        if card.is_none() {
            self.circulation()?.check_desk_branch(&r.branch)?;
        }
        let by = requester(&card, &r.actor)?;
        let loan_id = r.loan_id.trim();
        if loan_id.is_empty() || loan_id.len() > 64 {
            return Err(ServiceError::new(ErrorCode::LoanNotFound).into());
        }
        Ok(Response::new(self.circulation()?.renew(loan_id, by).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn place_hold(
        &self,
        req: Request<pb::PlaceHoldRequest>,
    ) -> Result<Response<pb::Hold>, Status> {
        let r = req.into_inner();
        let origin = if r.counter_branch.trim().is_empty() {
            HoldOrigin::Web
        } else {
            HoldOrigin::Counter {
                branch: Branch::parse(&r.counter_branch)?,
            }
        };
        let request = HoldRequest {
            card: CardNumber::parse(&r.card_number)?,
            title: TitleId::parse(&r.title_id)?,
            pickup: Branch::parse(&r.pickup_branch)?,
            receipt_mail: r.receipt_mail,
            origin,
            actor: r.actor,
        };
        Ok(Response::new(
            self.circulation()?.place_hold(&request).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_hold(
        &self,
        req: Request<pb::CancelHoldRequest>,
    ) -> Result<Response<pb::Hold>, Status> {
        let r = req.into_inner();
        let card = optional_card(&r.card_number)?;
        if card.is_none() {
            self.circulation()?.check_desk_branch(&r.branch)?;
        }
        let by = requester(&card, &r.actor)?;
        let id = hold_id(&r.hold_id)?;
        let reason = Some(r.reason.as_str()).filter(|s| !s.trim().is_empty());
        Ok(Response::new(
            self.circulation()?.cancel_hold(&id, by, reason).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_hold(
        &self,
        req: Request<pb::ReviewHoldRequest>,
    ) -> Result<Response<pb::Hold>, Status> {
        let r = req.into_inner();
        self.circulation()?.check_desk_branch(&r.branch)?;
        let id = hold_id(&r.hold_id)?;
        Ok(Response::new(
            self.circulation()?.confirm_hold(&id, &r.actor).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn reject_hold(
        &self,
        req: Request<pb::ReviewHoldRequest>,
    ) -> Result<Response<pb::Hold>, Status> {
        let r = req.into_inner();
        self.circulation()?.check_desk_branch(&r.branch)?;
        let id = hold_id(&r.hold_id)?;
        // Stored and mailed to the patron (N1): the text check of every stored field.
        kitsuki_proto::text::check("reason", &r.reason, kitsuki_proto::text::limits::REASON)?;
        Ok(Response::new(
            self.circulation()?
                .reject_hold(&id, &r.reason, &r.actor)
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list_loans(
        &self,
        req: Request<pb::PatronRequest>,
    ) -> Result<Response<pb::Loans>, Status> {
        let card = CardNumber::parse(&req.into_inner().card_number)?;
        Ok(Response::new(pb::Loans {
            loans: self.circulation()?.list_loans(&card).await?,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_holds(
        &self,
        req: Request<pb::PatronRequest>,
    ) -> Result<Response<pb::Holds>, Status> {
        let card = CardNumber::parse(&req.into_inner().card_number)?;
        Ok(Response::new(pb::Holds {
            holds: self.circulation()?.list_holds(&card).await?,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_title_holdability(
        &self,
        req: Request<pb::TitleHoldabilityRequest>,
    ) -> Result<Response<pb::TitleHoldabilities>, Status> {
        let ids = req
            .into_inner()
            .title_ids
            .iter()
            .map(|s| TitleId::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServiceError::from)?;
        if ids.len() > 500 {
            return Err(ServiceError::with_detail(ErrorCode::InvalidInput, "title_ids").into());
        }
        Ok(Response::new(pb::TitleHoldabilities {
            titles: self.circulation()?.title_holdability(&ids).await?,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_hold_shelf(
        &self,
        req: Request<pb::BranchRequest>,
    ) -> Result<Response<pb::DeskHolds>, Status> {
        self.circulation()?
            .check_desk_branch(&req.into_inner().branch)?;
        Ok(desk_holds(self.circulation()?.hold_shelf().await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_expired_holds(
        &self,
        req: Request<pb::BranchRequest>,
    ) -> Result<Response<pb::DeskHolds>, Status> {
        self.circulation()?
            .check_desk_branch(&req.into_inner().branch)?;
        Ok(desk_holds(self.circulation()?.expired_holds().await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_pull_list(
        &self,
        req: Request<pb::BranchRequest>,
    ) -> Result<Response<pb::DeskHolds>, Status> {
        self.circulation()?
            .check_desk_branch(&req.into_inner().branch)?;
        Ok(desk_holds(self.circulation()?.pull_list().await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_transits(
        &self,
        req: Request<pb::BranchRequest>,
    ) -> Result<Response<pb::Transits>, Status> {
        self.circulation()?
            .check_desk_branch(&req.into_inner().branch)?;
        Ok(Response::new(self.circulation()?.transits().await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_provisional_holds(
        &self,
        req: Request<pb::BranchRequest>,
    ) -> Result<Response<pb::DeskHolds>, Status> {
        self.circulation()?
            .check_desk_branch(&req.into_inner().branch)?;
        Ok(desk_holds(self.circulation()?.provisional_holds().await?))
    }

    #[tracing::instrument(skip_all)]
    async fn run_due_jobs(
        &self,
        _req: Request<pb::RunDueJobsRequest>,
    ) -> Result<Response<pb::RunDueJobsResponse>, Status> {
        let expired = self.circulation()?.run_due_jobs().await?;
        Ok(Response::new(pb::RunDueJobsResponse {
            expired_holds: u32::try_from(expired).unwrap_or(u32::MAX),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn record_item(
        &self,
        req: Request<pb::RecordItemRequest>,
    ) -> Result<Response<pb::RecordItemResponse>, Status> {
        let r = req.into_inner();
        let barcode = Barcode::parse(&r.barcode)?;
        let title = TitleId::parse(&r.title_id)?;
        let home = Branch::parse(&r.branch)?;
        let material = crate::service::material(r.r#type)
            .ok_or_else(|| ServiceError::with_detail(ErrorCode::InvalidInput, "type"))?;
        let created = self
            .circulation()?
            .record_item(&barcode, &title, home, material)
            .await?;
        Ok(Response::new(pb::RecordItemResponse { created }))
    }

    async fn branch_info(
        &self,
        _req: Request<pb::BranchInfoRequest>,
    ) -> Result<Response<pb::BranchInfoResponse>, Status> {
        let branch = match &self.served {
            Served::Instance(c) => c.branch(),
            Served::BranchOnly(b) => *b,
        };
        Ok(Response::new(pb::BranchInfoResponse {
            branch: branch.code().to_string(),
        }))
    }
}
