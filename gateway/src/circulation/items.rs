//! Catalogue administration's one call to circulation: a new item, told at once.

use kitsuki_proto::Branch;
use kitsuki_proto::circulation as pb;

use super::*;
use crate::state::AppState;

/// Read-your-writes of a new item (ARCHITECTURE.md "Data"): tells circulation of an item
/// the catalogue has just registered, before the gateway answers 201, so that the item
/// can be lent and held at once rather than when its `ItemCreated` event has come through
/// the outbox relay and the bus. The instance of its home branch is asked first, then the
/// others (one database: any of them records it for all). When none answers (circulation
/// wholly down, so nothing can be lent anyway) the event path still brings the item, and
/// an instance says ready only once it has caught up with the events published before it
/// started (`kitsuki_platform::catch_up`): so the answer stays 201 and this is logged.
pub async fn tell_new_item(state: &AppState, item: &kitsuki_proto::catalog::Item) {
    if !state.has_circulation() {
        return;
    }
    let home = Branch::parse(&item.branch).unwrap_or(Branch::Kitsuki);
    let message = pb::RecordItemRequest {
        barcode: item.barcode.clone(),
        title_id: item.title_id.clone(),
        branch: item.branch.clone(),
        r#type: item.r#type,
    };
    // An idempotent upsert (by barcode), so it moves on like a read; and no retry budget
    // even on the last instance: the event is this call's retry, and a registration while
    // circulation is wholly down should not wait for it.
    let recorded = on_any_instance(
        state,
        home,
        Effect::Read,
        message,
        |mut c, mut r| async move {
            r.extensions_mut()
                .insert(kitsuki_platform::grpc_retry::NoRetry);
            c.record_item(r).await
        },
    )
    .await;
    if let Err(error) = recorded {
        tracing::warn!(barcode = %item.barcode, error = ?error, "no circulation instance recorded the new item; its event will bring it");
    }
}
