//! The circulation service, one instance per branch: loans, renewals, holds, pickup
//! routing, hold shelves, transits, expiry. This skeleton serves the contract with every
//! method answering `Unimplemented` except `BranchInfo`; issue 4 builds the rest.

pub mod domain;

use kitsuki_proto::Branch;
use kitsuki_proto::circulation as pb;
use kitsuki_proto::circulation::circulation_service_server::{
    CirculationService, CirculationServiceServer,
};
use tonic::{Request, Response, Status};

/// gRPC server of one branch's circulation instance.
#[derive(Debug, Clone)]
pub struct CirculationGrpc {
    branch: Branch,
}

impl CirculationGrpc {
    pub fn new(branch: Branch) -> Self {
        CirculationGrpc { branch }
    }
    pub fn into_server(self) -> CirculationServiceServer<CirculationGrpc> {
        CirculationServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl CirculationService for CirculationGrpc {
    async fn branch_info(
        &self,
        _req: Request<pb::BranchInfoRequest>,
    ) -> Result<Response<pb::BranchInfoResponse>, Status> {
        Ok(Response::new(pb::BranchInfoResponse {
            branch: self.branch.code().to_string(),
        }))
    }
}
