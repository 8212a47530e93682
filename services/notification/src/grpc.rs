//! The notification service's gRPC face: the delivery log for the embedded run's dev page.

use kitsuki_proto::notification as pb;
use kitsuki_proto::notification::notification_service_server::{
    NotificationService, NotificationServiceServer,
};
use tonic::{Request, Response, Status};

use crate::service::Notifier;
use crate::store::DeliveryRow;

/// gRPC server of the notification service.
#[derive(Debug, Clone)]
pub struct NotificationGrpc {
    notifier: Notifier,
}

impl NotificationGrpc {
    pub fn new(notifier: Notifier) -> Self {
        NotificationGrpc { notifier }
    }

    pub fn into_server(self) -> NotificationServiceServer<NotificationGrpc> {
        NotificationServiceServer::new(self)
    }
}

fn to_proto(r: DeliveryRow) -> pb::Delivery {
    pb::Delivery {
        delivery_id: r.delivery_id,
        event_id: r.event_id,
        to: r.recipient,
        subject: r.subject,
        status: r.status,
        sent_at: r.sent_at.unwrap_or_default(),
        attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationGrpc {
    #[tracing::instrument(skip_all)]
    async fn list_deliveries(
        &self,
        req: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::Deliveries>, Status> {
        let rows = self
            .notifier
            .list_deliveries(req.into_inner().limit)
            .await?;
        Ok(Response::new(pb::Deliveries {
            deliveries: rows.into_iter().map(to_proto).collect(),
        }))
    }
}
