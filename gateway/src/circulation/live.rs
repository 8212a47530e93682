//! Rule H1 for one title as circulation decides it now, for the title page.

use std::time::Duration;

use kitsuki_proto::circulation as pb;

use super::*;
use crate::state::AppState;

/// How long a title page waits for circulation's own answer before it shows the
/// catalogue's: the page must not hang on a service it can do without.
const LIVE_HOLDABILITY_TIMEOUT: Duration = Duration::from_millis(1500);

/// Rule H1 for one title as circulation decides it now, from the same rows a hold is
/// checked against (see `catalog::pages::title`); `None` when circulation cannot say (not
/// deployed, down or slow, or it has not seen the title's copies yet).
pub async fn live_holdability(state: &AppState, title_id: &str) -> Option<pb::TitleHoldability> {
    let mut client = state.circulation(instance_for(Call::Patron)).ok()?;
    let mut request = state.rpc(pb::TitleHoldabilityRequest {
        title_ids: vec![title_id.to_string()],
    });
    request.set_timeout(LIVE_HOLDABILITY_TIMEOUT);
    match client.get_title_holdability(request).await {
        Ok(answer) => answer
            .into_inner()
            .titles
            .into_iter()
            .find(|t| t.title_id == title_id && t.copies > 0),
        Err(status) => {
            tracing::warn!(grpc_code = ?status.code(), "holdability not available from circulation");
            None
        }
    }
}
