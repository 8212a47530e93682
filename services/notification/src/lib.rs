//! The notification service: mail templates, SMTP delivery, retries, delivery log. This
//! skeleton serves the contract with an empty delivery log; issue 3 builds the mail.

use kitsuki_proto::notification as pb;
use kitsuki_proto::notification::notification_service_server::{
    NotificationService, NotificationServiceServer,
};
use tonic::{Request, Response, Status};

/// gRPC server of the notification service.
#[derive(Debug, Clone, Default)]
pub struct NotificationGrpc;

impl NotificationGrpc {
    pub fn into_server(self) -> NotificationServiceServer<NotificationGrpc> {
        NotificationServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationGrpc {
    async fn list_deliveries(
        &self,
        _req: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::Deliveries>, Status> {
        Ok(Response::new(pb::Deliveries {
            deliveries: Vec::new(),
        }))
    }
}
