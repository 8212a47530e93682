//! Hand-built proto values for the crate's pure unit tests (rendering, views), and a state
//! whose services listen nowhere, for router tests that must not reach a service. Every
//! test that needs a service runs against the real ones, in `gateway/tests/`.

use kitsuki_proto::catalog::catalog_service_client::CatalogServiceClient;
use kitsuki_proto::catalog::{BranchAvailability, Item, ItemStatus, MaterialType, TitleSummary};
use kitsuki_proto::notification::notification_service_client::NotificationServiceClient;
use kitsuki_proto::patron::patron_service_client::PatronServiceClient;
use tonic::transport::Endpoint;

use crate::state::{AppState, Clients};

pub const TITLE_ID: &str = "0192f1c2-7a5e-7c3b-9d1e-0123456789ab";

pub fn summary(title: &str, kind: MaterialType, rows: &[(&str, u32, u32)]) -> TitleSummary {
    TitleSummary {
        title_id: TITLE_ID.into(),
        title: title.into(),
        title_reading: "ボッチャン".into(),
        // As the catalogue stores and answers them: the heading, the statement, and the
        // display form its `domain::names` makes of them.
        author: "夏目, 漱石".into(),
        responsibility: "夏目漱石 [著]".into(),
        creators: "夏目漱石 著".into(),
        publisher: "新潮社".into(),
        year: Some(1950),
        isbn: "9784101010038".into(),
        r#type: kind as i32,
        availability: rows
            .iter()
            .map(|(branch, total, available)| BranchAvailability {
                branch: (*branch).into(),
                total: *total,
                available: *available,
            })
            .collect(),
        holds_waiting: 0,
        created_at: "2025-01-01T00:00:00Z".into(),
        ..TitleSummary::default()
    }
}

pub fn item(barcode: &str, branch: &str, status: ItemStatus, due_date: &str) -> Item {
    Item {
        barcode: barcode.into(),
        title_id: TITLE_ID.into(),
        branch: branch.into(),
        call_number: "913.6/ナ".into(),
        status: status as i32,
        due_date: due_date.into(),
        r#type: 0,
    }
}

/// A state whose clients point at a port nobody listens on: every call fails at once as
/// `unavailable`, which is what a request needs to reach a handler and no further. Like a
/// deployed gateway, it has no notification client.
/// Must be called inside a Tokio runtime (lazy channels spawn their worker).
pub fn unreachable_state() -> AppState {
    AppState::new(unreachable_clients(false))
}

/// Clients that reach nobody; with `notification`, a notification client too.
pub fn unreachable_clients(notification: bool) -> Clients {
    let channel: kitsuki_platform::grpc_trace::TracedChannel =
        Endpoint::from_static("http://127.0.0.1:1")
            .connect_lazy()
            .into();
    // Nobody will ever answer: no need to wait out the retries.
    let channel = channel.without_retries();
    Clients {
        catalog: CatalogServiceClient::new(channel.clone()),
        patron: PatronServiceClient::new(channel.clone()),
        notification: notification.then(|| NotificationServiceClient::new(channel)),
        // A catalogue-only deployment: the loan and hold paths answer 503.
        circulation: None,
    }
}
