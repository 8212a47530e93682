//! Relevance tiers (issue 10): a title whose whole title is the query comes first, then one
//! whose title starts with it, then one by the author the query names, then the rest by
//! BM25. Each tier is a clause of constant score added to the BM25 sum, far above what
//! BM25 reaches, so the tiers never mix and BM25 orders within each.
//!
//! Exact and prefix matches compare the whole normalised title, indexed as one term
//! (`title_key`): exact is that term, a prefix is the few terms of the dictionary that
//! start with the query (a range of the sorted term dictionary, walked as an automaton).
//! The title's reading key is compared the same way (`reading_key`, one term of a title
//! with a reading), so `あんのあいじょう` and `an no aijou` are exact for `アンの愛情`. An earlier form indexed the title between
//! marks in its bigram field and asked phrases of the marked grams: for Latin queries
//! those phrases read the positions of the commonest bigrams (`th`, `an`) and made the
//! benchmark's raw search three times slower; one term per title costs nearly nothing.

use std::sync::Arc;

use tantivy::Term;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

use super::{WordPrefix, WordPrefixQuery};
use crate::domain::reading::{is_kana_text, reading_key, romaji_to_kana};

/// One tier's step. BM25 sums of every field and term stay far below it (a score of a few
/// hundred is a long query matching everywhere); a power of two keeps the f32 sum exact
/// enough to order the scores within a tier (steps of 1/128 at 4 × 2^14).
const TIER: f32 = 16_384.0;
/// Exact title: also a prefix, so in all 4 + 2 steps above BM25; the author's tier adds 1.
pub const EXACT_TITLE: f32 = 4.0 * TIER;
pub const TITLE_PREFIX: f32 = 2.0 * TIER;
pub const AUTHOR: f32 = TIER;

/// The one term `key` of `field`, exactly, or every term that starts with it.
fn key_query(field: Field, key: &str, exact: bool) -> Box<dyn Query> {
    if exact {
        Box::new(TermQuery::new(
            Term::from_field_text(field, key),
            IndexRecordOption::Basic,
        ))
    } else {
        Box::new(WordPrefixQuery {
            field,
            prefix: Arc::new(WordPrefix(key.as_bytes().to_vec())),
        })
    }
}

/// The reading key of the whole query, when it is kana, or romaji word by word
/// (`an no aijou` → `あんのあいじょう`): what the title's reading is compared with.
pub fn query_reading(normalized: &str) -> Option<String> {
    let key = if is_kana_text(normalized) {
        reading_key(normalized)
    } else {
        let words: Option<Vec<String>> = normalized
            .split([' ', ',', '、'])
            .filter(|w| !w.is_empty())
            .map(romaji_to_kana)
            .collect();
        reading_key(&words?.concat())
    };
    (!key.is_empty()).then_some(key)
}

/// The tier clauses of one query, to add as `Should` beside the query's `Must` clauses:
/// exact title, title prefix (the title, or the title's reading), and `author` (every
/// term found in the author or the author's reading), each at its constant.
pub fn clauses(
    title_key: Field,
    reading_key: Field,
    normalized: &str,
    author: Option<Box<dyn Query>>,
) -> Vec<(Occur, Box<dyn Query>)> {
    let reading = query_reading(normalized);
    let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if !normalized.is_empty() {
        for (exact, bonus) in [(true, EXACT_TITLE), (false, TITLE_PREFIX)] {
            let mut either: Vec<(Occur, Box<dyn Query>)> =
                vec![(Occur::Should, key_query(title_key, normalized, exact))];
            if let Some(r) = &reading {
                either.push((Occur::Should, key_query(reading_key, r, exact)));
            }
            let query: Box<dyn Query> = Box::new(BooleanQuery::new(either));
            out.push((Occur::Should, Box::new(ConstScoreQuery::new(query, bonus))));
        }
    }
    if let Some(author) = author {
        out.push((
            Occur::Should,
            Box::new(ConstScoreQuery::new(author, AUTHOR)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reading_is_kana_or_romaji_word_by_word() {
        let key = reading_key("あんのあいじょう");
        assert_eq!(query_reading("あんのあいじょう"), Some(key.clone()));
        assert_eq!(query_reading("an no aijou"), Some(key.clone()));
        assert_eq!(
            query_reading("an no aijō"),
            None,
            "normalised text has no macrons"
        );
        let katakana = crate::domain::text::normalize("アンノアイジョウ");
        assert_eq!(query_reading(&katakana), Some(key.clone()));
        assert_eq!(
            query_reading("natsume soseki").as_deref(),
            query_reading("なつめ そうせき").as_deref()
        );
        assert_eq!(query_reading("pride and prejudice"), None);
        assert_eq!(query_reading("夏目漱石"), None);
        assert_eq!(query_reading(""), None);
    }

    #[test]
    fn the_tiers_never_mix_with_bm25_or_with_each_other() {
        // The worst a lower tier can add up to stays below the tier above.
        let bm25_ceiling = 1_000.0;
        assert!(AUTHOR + bm25_ceiling < TITLE_PREFIX);
        assert!(TITLE_PREFIX + AUTHOR + bm25_ceiling < EXACT_TITLE + TITLE_PREFIX);
    }
}
