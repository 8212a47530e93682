//! The patron-account service's gRPC face. Patron methods answer `Unimplemented` until
//! issue 3 builds them.

use kitsuki_proto::patron as pb;
use kitsuki_proto::patron::patron_service_server::{PatronService, PatronServiceServer};
use kitsuki_proto::{Branch, ErrorCode, ServiceError};
use tonic::{Request, Response, Status};

use crate::staff::{Role, StaffAccounts, StaffIdentity};

#[derive(Debug, Clone)]
pub struct PatronGrpc {
    staff: StaffAccounts,
}

impl PatronGrpc {
    pub fn new(staff: StaffAccounts) -> Self {
        PatronGrpc { staff }
    }
    pub fn into_server(self) -> PatronServiceServer<PatronGrpc> {
        PatronServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl PatronService for PatronGrpc {
    #[tracing::instrument(skip_all)]
    async fn staff_login(
        &self,
        req: Request<pb::StaffLoginRequest>,
    ) -> Result<Response<pb::SessionGranted>, Status> {
        let r = req.into_inner();
        let g = self.staff.login(r.username.trim(), &r.password).await?;
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
        let who = self.staff.session(&req.into_inner().token).await?;
        Ok(Response::new(pb::StaffIdentity {
            username: who.username,
            branches: who.branches.iter().map(|b| b.code().to_string()).collect(),
            role: who.role.code().to_string(),
        }))
    }

    async fn staff_logout(
        &self,
        req: Request<pb::SessionToken>,
    ) -> Result<Response<pb::Empty>, Status> {
        self.staff.logout(&req.into_inner().token).await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(skip_all)]
    async fn create_staff(
        &self,
        req: Request<pb::CreateStaffRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = req.into_inner();
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
        self.staff.create(&who, &r.password, &r.actor).await?;
        Ok(Response::new(pb::Empty {}))
    }
}
