//! `kitsuki readings regenerate`: after a dictionary change (a new IPADIC, a fix of the
//! generator), the generated readings of the whole catalogue are made again. A reading the
//! record or staff gave (`reading_source = 'given'`) is kept; only its author's reading,
//! which is always generated, is refreshed. Each changed title gets a change number and a
//! `catalog.title.changed` event in the same transaction, so every index catches up with it
//! (this process's at the end, a running replica's through its follower).

use kitsuki_platform::clock::format_instant;

use crate::consumer::enqueue_title_changed;
use crate::model::{READING_GIVEN, Title};
use crate::readings::generated_readings;
use crate::service::Catalog;
use crate::store;

/// Titles read and updated per transaction.
const BATCH: i64 = 500;

/// What a regeneration did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RegenerateSummary {
    /// Titles whose readings were made again.
    pub titles: u64,
    /// Of those, titles whose readings changed.
    pub changed: u64,
}

impl Catalog {
    /// Makes the generated readings of every title again with the dictionary in use (see
    /// the module); fails when no dictionary is loaded.
    pub async fn regenerate_readings(&self) -> anyhow::Result<RegenerateSummary> {
        let Some(generator) = self.reading_generator() else {
            anyhow::bail!(
                "no reading dictionary is loaded: install Debian's mecab-ipadic, or set KITSUKI_IPADIC_DIR"
            );
        };
        let mut summary = RegenerateSummary::default();
        let mut after = String::new();
        loop {
            let titles = store::titles_after(&self.db().pool, &after, BATCH).await?;
            let Some(last) = titles.last() else { break };
            after = last.title_id.clone();
            summary.titles += titles.len() as u64;
            let changed: Vec<(&Title, (String, String, &str))> = titles
                .iter()
                .filter_map(|t| {
                    let readings = if t.reading_source == READING_GIVEN {
                        let author = generator.name_reading(&t.author).unwrap_or_default();
                        (t.title_reading.clone(), author, READING_GIVEN)
                    } else {
                        generated_readings(&generator, &t.title, &t.author)
                    };
                    let same = readings.0 == t.title_reading
                        && readings.1 == t.author_reading
                        && readings.2 == t.reading_source;
                    (!same).then_some((t, readings))
                })
                .collect();
            if changed.is_empty() {
                continue;
            }
            let now = format_instant(self.clock().now());
            let mut tx = self.db().pool.begin().await?;
            let first = store::take_change_seqs(&mut tx, changed.len() as i64).await?;
            for (k, (t, (title_reading, author_reading, source))) in changed.iter().enumerate() {
                let readings = (title_reading.as_str(), author_reading.as_str(), *source);
                if store::replace_readings(
                    &mut tx,
                    &t.title_id,
                    readings,
                    &t.reading_source,
                    first + k as i64,
                )
                .await?
                {
                    enqueue_title_changed(&mut tx, &t.title_id, &now).await?;
                    summary.changed += 1;
                }
            }
            tx.commit().await?;
        }
        self.catch_up_index().await?;
        Ok(summary)
    }
}
