//! Suggestions for a query without hits (もしかして, issue 10): the titles and authors whose
//! readings share the most bigrams with the query's reading. A query that found nothing
//! is often one wrong or missing kana (なつめそうせぎ), a romaji slip (natume souseky) or
//! a kanji that sounds the same (夏目草石); its reading then still shares most of its
//! bigrams with the one it meant, which a phrase (every bigram in a row) cannot see and a
//! bag of bigrams, ranked by BM25, can.

use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, TERMINATED, Term};

use super::ranking::{Hit, NO_YEAR, SortOrder, TopHits, merge};
use super::{IndexError, SearchIndex, is_word, tiers};
use crate::domain::reading::reading_key;
use crate::domain::text::normalize;

/// A title near the query, and whether it is near by its author rather than its title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub title_id: String,
    pub by_author: bool,
}

/// The overlapping bigrams of a key (each position), the bag a suggestion is ranked by.
fn bigrams(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().filter(|c| !c.is_whitespace()).collect();
    let mut grams: Vec<String> = chars.windows(2).map(|w| w.iter().collect()).collect();
    grams.sort();
    grams.dedup();
    grams
}

impl SearchIndex {
    /// Up to `limit` titles near `q` by reading. `generated` is the query's reading by the
    /// dictionary, for a query in kanji. Nearness needs half the query's bigrams at least,
    /// so that a query near nothing gets no suggestion rather than a random one.
    pub fn suggest(
        &self,
        q: &str,
        generated: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Suggestion>, IndexError> {
        let normalized = normalize(q);
        let reading = tiers::query_reading(&normalized)
            .or_else(|| generated.map(|g| reading_key(&normalize(g))));
        let f = &self.fields;
        let (key, title_field, author_field) = match &reading {
            Some(key) => (key.clone(), f.readings, f.author_readings),
            // Nothing to read it by: its own characters, in the title and author. A Latin
            // query is compared by its words' bigrams the same way.
            None => (normalized.replace(' ', ""), f.title, f.author),
        };
        if is_word(&key) && key.chars().count() < 3 {
            return Ok(Vec::new());
        }
        let mut grams = bigrams(&key);
        if reading.is_none() {
            // Kanji carry meaning one by one: one wrong in four leaves one bigram in
            // three, but three characters in four.
            let mut chars: Vec<String> = key.chars().map(String::from).collect();
            chars.sort();
            chars.dedup();
            grams.extend(chars);
        }
        if grams.len() < 2 {
            return Ok(Vec::new());
        }
        let mut out: Vec<(f32, Suggestion)> = Vec::new();
        for (field, by_author) in [(title_field, false), (author_field, true)] {
            for (score, title_id) in self.nearest(field, &grams, limit)? {
                out.push((
                    score,
                    Suggestion {
                        title_id,
                        by_author,
                    },
                ));
            }
        }
        out.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(out.into_iter().map(|(_, s)| s).take(limit).collect())
    }

    /// The `limit` documents whose `field` holds most of `grams` (BM25 of the bag), with
    /// their scores.
    fn nearest(
        &self,
        field: Field,
        grams: &[String],
        limit: usize,
    ) -> Result<Vec<(f32, String)>, IndexError> {
        let clauses: Vec<(Occur, Box<dyn Query>)> = grams
            .iter()
            .map(|g| {
                let term = Term::from_field_text(field, g);
                (
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)) as Box<dyn Query>,
                )
            })
            .collect();
        let query = BooleanQuery::with_minimum_required_clauses(clauses, grams.len().div_ceil(2));
        let searcher = self.reader.searcher();
        let weight = query.weight(EnableScoring::enabled_from_searcher(&searcher))?;
        let mut per_segment = Vec::new();
        for (segment, reader) in searcher.segment_readers().iter().enumerate() {
            let mut top = TopHits::new(limit, SortOrder::Relevance, 64);
            let alive = reader.alive_bitset();
            let mut scorer = weight.scorer(reader, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|bits| bits.is_alive(doc)) {
                    top.push(Hit {
                        score: scorer.score(),
                        year: NO_YEAR,
                        created_micros: 0,
                        reading_ord: 0,
                        segment: segment as u32,
                        doc,
                        editions: 1,
                    });
                }
                doc = scorer.advance();
            }
            per_segment.push(top);
        }
        let hits = merge(per_segment, SortOrder::Relevance, 0, limit, |_| {
            Ok::<_, IndexError>(String::new())
        })?;
        let ids = self.title_ids(&searcher, &hits)?;
        Ok(hits.iter().map(|h| h.score).zip(ids).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bag_holds_each_overlapping_bigram_once() {
        assert_eq!(bigrams("なつめ"), ["つめ", "なつ"]);
        assert_eq!(bigrams("ああああ"), ["ああ"]);
        assert!(bigrams("な").is_empty());
    }
}
