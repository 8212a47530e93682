//! `kitsuki readings regenerate`: after a dictionary change (a new IPADIC, a fix of the
//! generator), the generated readings of the whole catalogue are made again. A reading the
//! record or staff gave (`reading_source = 'given'`) is kept; only its author's reading,
//! which is always generated, is refreshed. Each changed title gets a change number and a
//! `catalog.title.changed` event in the same transaction, so every index catches up with it
//! (this process's at the end, a running replica's through its follower).

use kitsuki_platform::clock::format_instant;
use kitsuki_platform::{events, outbox};
use kitsuki_proto::events as ev;
use sqlx::Row;

use crate::consumer::TITLE_CHANGED;
use crate::model::READING_GIVEN;
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

struct Stored {
    title_id: String,
    title: String,
    title_reading: String,
    author: String,
    author_reading: String,
    reading_source: String,
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
            let rows: Vec<Stored> = sqlx::query(
                "SELECT title_id, title, title_reading, author, author_reading, reading_source \
                 FROM titles WHERE title_id > $1 ORDER BY title_id LIMIT $2",
            )
            .bind(&after)
            .bind(BATCH)
            .fetch_all(&self.db().pool)
            .await?
            .iter()
            .map(|r| -> Result<Stored, sqlx::Error> {
                Ok(Stored {
                    title_id: r.try_get("title_id")?,
                    title: r.try_get("title")?,
                    title_reading: r.try_get("title_reading")?,
                    author: r.try_get("author")?,
                    author_reading: r.try_get("author_reading")?,
                    reading_source: r.try_get("reading_source")?,
                })
            })
            .collect::<Result<_, _>>()?;
            let Some(last) = rows.last() else { break };
            after = last.title_id.clone();
            summary.titles += rows.len() as u64;
            let changed: Vec<(&Stored, String, String, &str)> = rows
                .iter()
                .filter_map(|r| {
                    let (title_reading, author_reading, source) =
                        if r.reading_source == READING_GIVEN {
                            let author = generator.name_reading(&r.author).unwrap_or_default();
                            (r.title_reading.clone(), author, READING_GIVEN)
                        } else {
                            generated_readings(generator, &r.title, &r.author)
                        };
                    let same = title_reading == r.title_reading
                        && author_reading == r.author_reading
                        && source == r.reading_source;
                    (!same).then_some((r, title_reading, author_reading, source))
                })
                .collect();
            if changed.is_empty() {
                continue;
            }
            let now = format_instant(self.clock().now());
            let mut tx = self.db().pool.begin().await?;
            let first = store::take_change_seqs(&mut tx, changed.len() as i64).await?;
            for (k, (r, title_reading, author_reading, source)) in changed.iter().enumerate() {
                // Only where the row is as read: a staff correction meanwhile is kept.
                let updated = sqlx::query(
                    "UPDATE titles SET title_reading = $1, author_reading = $2, \
                     reading_source = $3, change_seq = $4 \
                     WHERE title_id = $5 AND reading_source = $6",
                )
                .bind(title_reading)
                .bind(author_reading)
                .bind(*source)
                .bind(first + k as i64)
                .bind(&r.title_id)
                .bind(&r.reading_source)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    continue;
                }
                let event_id = events::new_event_id();
                let event = events::build(
                    TITLE_CHANGED,
                    event_id.clone(),
                    &now,
                    &ev::TitleChanged {
                        meta: Some(ev::EventMeta {
                            event_id,
                            occurred_at: now.clone(),
                        }),
                        title_id: r.title_id.clone(),
                    },
                );
                outbox::enqueue(&mut tx, &event, &now).await?;
                summary.changed += 1;
            }
            tx.commit().await?;
        }
        self.catch_up_index().await?;
        Ok(summary)
    }
}
