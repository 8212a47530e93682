//! The titles (書名) that fill the lists of loans and holds, asked of the catalogue.

use std::collections::HashMap;

use futures::StreamExt;
use kitsuki_proto::catalog::GetTitleRequest;

use crate::state::AppState;

/// How many titles are asked of the catalogue at once when a list is filled.
const TITLE_LOOKUPS_AT_ONCE: usize = 8;

/// The titles (書名) of a list's records, asked of the catalogue. A title that cannot be
/// had (the catalogue is down, or the record is gone) stays empty: a patron still sees
/// their due dates when the catalogue is down, and the list says so for that line.
#[derive(Debug, Clone, Default)]
pub struct TitleNames(pub(super) HashMap<String, String>);

impl TitleNames {
    pub async fn fetch<'a>(state: &AppState, ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut wanted: Vec<String> = ids
            .into_iter()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Owned ids and a state per lookup: the futures live in a stream that a handler's
        // future must be able to send between threads.
        let lookups = wanted.into_iter().map(|id| {
            let state = state.clone();
            async move {
                let answer = state
                    .catalog()
                    .get_title(state.rpc(GetTitleRequest {
                        title_id: id.clone(),
                    }))
                    .await;
                match answer {
                    Ok(detail) => detail.into_inner().title.map(|summary| (id, summary.title)),
                    Err(status) => {
                        tracing::warn!(title_id = %id, grpc_code = ?status.code(), "title of a list line not found");
                        None
                    }
                }
            }
        });
        let found: Vec<Option<(String, String)>> = futures::stream::iter(lookups)
            .buffer_unordered(TITLE_LOOKUPS_AT_ONCE)
            .collect()
            .await;
        TitleNames(found.into_iter().flatten().collect())
    }

    /// The title of `title_id`, or "" when it could not be had.
    pub fn get(&self, title_id: &str) -> String {
        self.0.get(title_id).cloned().unwrap_or_default()
    }
}
