//! Reading the catalogue: a title with its items and its other editions, and searches —
//! the index ranks (`index/`), the database gives the page's titles and items, and a
//! search without hits answers with suggestions near it by reading (もしかして).

use std::collections::HashMap;

use kitsuki_proto::catalog as pb;
use kitsuki_proto::{ErrorCode, ServiceError};

use crate::index::{Facets, SearchFilter, SearchOptions};
use crate::model::{self, Item, Title};
use crate::service::{Catalog, MAX_PER_PAGE, internal};
use crate::store;

/// Most other editions a title page lists.
pub const MAX_OTHER_EDITIONS: usize = 20;

/// Most suggestions a search without hits answers with.
pub const MAX_SUGGESTIONS: usize = 5;

impl Catalog {
    /// A title with its items and the other editions of its work.
    pub async fn get_title(&self, title_id: &str) -> Result<pb::TitleDetail, ServiceError> {
        let title = store::get_title(&self.db().pool, title_id)
            .await
            .map_err(|e| internal("reading a title", e))?
            .ok_or_else(|| ServiceError::new(ErrorCode::TitleNotFound))?;
        let items = store::items_of(&self.db().pool, std::slice::from_ref(&title.title_id))
            .await
            .map_err(|e| internal("reading items", e))?;
        let index = self.search_index();
        let (name, author) = (title.title.clone(), title.author.clone());
        let editions = crate::search_pool::run(move || {
            index.editions_of(&name, &author, MAX_OTHER_EDITIONS + 1)
        })
        .await
        .map_err(|e| internal("finding editions", e))?
        .map_err(|e| internal("finding editions", e))?;
        let others: Vec<String> = editions
            .into_iter()
            .filter(|id| *id != title.title_id)
            .take(MAX_OTHER_EDITIONS)
            .collect();
        Ok(pb::TitleDetail {
            title: Some(model::summary(&title, &items)),
            items: items.iter().map(Item::to_proto).collect(),
            other_editions: self.summaries(&others).await?,
        })
    }

    /// Searches (or, with an empty query, lists newest first) with filters and paging.
    pub async fn search(
        &self,
        q: &str,
        filter: &SearchFilter,
        page: u32,
        per_page: u32,
    ) -> Result<pb::SearchTitlesResponse, ServiceError> {
        self.search_with(q, filter, &SearchOptions::default(), page, per_page)
            .await
    }

    /// Searches with a sort order, facets and editions grouped as `options` say.
    ///
    /// The index is searched on the search pool (a blocking thread, one per core at most,
    /// [`crate::search_pool`]); the page's titles are then read in one query and their
    /// items in one more. A query without hits is answered with suggestions.
    pub async fn search_with(
        &self,
        q: &str,
        filter: &SearchFilter,
        options: &SearchOptions,
        page: u32,
        per_page: u32,
    ) -> Result<pb::SearchTitlesResponse, ServiceError> {
        let page = page.max(1);
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let offset = ((page - 1) as usize).saturating_mul(per_page as usize);
        let index = self.search_index();
        let (query, f, o) = (q.to_owned(), filter.clone(), *options);
        let result = crate::search_pool::run(move || {
            index.search_with(&query, &f, &o, offset, per_page as usize)
        })
        .await
        .map_err(|e| internal("searching", e))?
        .map_err(|e| internal("searching", e))?;
        let mut hits = self.summaries(&result.title_ids).await?;
        if options.group_editions {
            let editions: HashMap<&str, u32> = result
                .title_ids
                .iter()
                .map(String::as_str)
                .zip(result.editions.iter().copied())
                .collect();
            for hit in &mut hits {
                hit.editions = editions.get(hit.title_id.as_str()).copied().unwrap_or(1);
            }
        }
        let suggestions = if result.total == 0 && !q.trim().is_empty() {
            self.suggestions(q).await?
        } else {
            Vec::new()
        };
        Ok(pb::SearchTitlesResponse {
            total: result.total,
            page,
            per_page,
            hits,
            facets: result.facets.map(facets_to_proto),
            suggestions,
        })
    }

    /// Titles and authors whose readings are nearest the query's (もしかして): the query's
    /// reading when it is kana or romaji, else its reading by the dictionary when one is
    /// loaded, else its own text.
    async fn suggestions(&self, q: &str) -> Result<Vec<String>, ServiceError> {
        let generated = self.reading_generator().and_then(|g| g.reading(q));
        let index = self.search_index();
        let query = q.to_owned();
        let near = crate::search_pool::run(move || {
            index.suggest(&query, generated.as_deref(), MAX_SUGGESTIONS)
        })
        .await
        .map_err(|e| internal("suggesting", e))?
        .map_err(|e| internal("suggesting", e))?;
        let ids: Vec<String> = near.iter().map(|s| s.title_id.clone()).collect();
        let titles = store::get_titles(&self.db().pool, &ids)
            .await
            .map_err(|e| internal("reading titles", e))?;
        let by_id: HashMap<&str, &Title> =
            titles.iter().map(|t| (t.title_id.as_str(), t)).collect();
        let mut out: Vec<String> = Vec::new();
        for s in &near {
            let Some(t) = by_id.get(s.title_id.as_str()) else {
                continue;
            };
            let text = if s.by_author { &t.author } else { &t.title };
            let text = text.trim();
            if !text.is_empty() && !out.iter().any(|o| o == text) {
                out.push(text.to_owned());
            }
        }
        out.truncate(MAX_SUGGESTIONS);
        Ok(out)
    }

    /// The summaries of titles, in the order of `ids`; a title gone from the database
    /// since it was indexed is left out.
    async fn summaries(&self, ids: &[String]) -> Result<Vec<pb::TitleSummary>, ServiceError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let titles = store::get_titles(&self.db().pool, ids)
            .await
            .map_err(|e| internal("reading titles", e))?;
        let items = store::items_of(&self.db().pool, ids)
            .await
            .map_err(|e| internal("reading items", e))?;
        let by_id: HashMap<&str, &Title> =
            titles.iter().map(|t| (t.title_id.as_str(), t)).collect();
        let mut items_of: HashMap<&str, Vec<Item>> = HashMap::with_capacity(by_id.len());
        for item in items {
            if let Some(title) = by_id.get(item.title_id.as_str()) {
                items_of
                    .entry(title.title_id.as_str())
                    .or_default()
                    .push(item);
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|t| {
                let mine = items_of
                    .get(t.title_id.as_str())
                    .map_or(&[][..], Vec::as_slice);
                model::summary(t, mine)
            })
            .collect())
    }
}

fn facets_to_proto(f: Facets) -> pb::Facets {
    let counts = |pairs: Vec<(String, u64)>| {
        pairs
            .into_iter()
            .map(|(value, count)| pb::FacetCount { value, count })
            .collect()
    };
    pb::Facets {
        available_branches: counts(f.available_branches),
        material_types: counts(f.material_types),
        ndc_classes: counts(
            f.ndc_classes
                .into_iter()
                .map(|(c, n)| (c.to_string(), n))
                .collect(),
        ),
        decades: counts(
            f.decades
                .into_iter()
                .map(|(d, n)| (d.to_string(), n))
                .collect(),
        ),
    }
}
