//! Relevance tiers (issue 10): a title whose whole title is the query comes first, then one
//! whose title starts with it, then one by the author the query names, then the rest by
//! BM25. Each tier is a clause of constant score added to the BM25 sum, far above what
//! BM25 reaches, so the tiers never mix and BM25 orders within each.
//!
//! Exact and prefix matches need to know where a title begins and ends, which bigrams do
//! not: the title's text is indexed between two [`MARK`]s, so `\u{3}ア` is the bigram of a
//! title starting with ア and `情\u{3}` of one ending with 情. A query is then "exactly the
//! title" when its grams, between the marks, are a phrase in the title field, and "a
//! prefix" with the first mark only. The title's reading key is indexed the same way in
//! the readings field, so `あんのあいじょう` and `an no aijou` are exact too.

use tantivy::Term;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

use super::covering_bigrams;
use crate::domain::reading::{is_kana_text, reading_key, romaji_to_kana};

/// Marks the start and the end of a title in its bigram field. A control character:
/// never in normalised text a person typed, so only the tier clauses ask for it.
pub const MARK: char = '\u{3}';

/// Stands for a space inside a marked title, so that the words of a query must stand
/// apart in the title as in the query: positions count characters, and with a plain space
/// (no gram) `漱石 夏目` would match `漱石と夏目` as well as `漱石 夏目`.
pub const SPACE: char = '\u{4}';

/// Whether a character is one of the marks, which are indexed only in the bigrams with
/// the characters beside them.
pub fn is_mark(c: char) -> bool {
    c == MARK || c == SPACE
}

/// One tier's step. BM25 sums of every field and term stay far below it (a score of a few
/// hundred is a long query matching everywhere); a power of two keeps the f32 sum exact
/// enough to order the scores within a tier (steps of 1/128 at 4 × 2^14).
const TIER: f32 = 16_384.0;
/// Exact title: also a prefix, so in all 4 + 2 steps above BM25; the author's tier adds 1.
pub const EXACT_TITLE: f32 = 4.0 * TIER;
pub const TITLE_PREFIX: f32 = 2.0 * TIER;
pub const AUTHOR: f32 = TIER;

/// The text of a title as indexed in its bigram field: between [`MARK`]s, each space a
/// [`SPACE`].
pub fn marked(text: &str) -> String {
    format!("{MARK}{}{MARK}", with_spaces_marked(text))
}

fn with_spaces_marked(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_whitespace() { SPACE } else { c })
        .collect()
}

/// The grams of `text` (after a [`MARK`], and before one too when `closed`, its spaces
/// [`SPACE`]s) at their positions, as a query of the field: a phrase, or one term.
pub fn anchored_query(field: Field, text: &str, closed: bool) -> Option<Box<dyn Query>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let s = if closed {
        marked(text)
    } else {
        format!("{MARK}{}", with_spaces_marked(text))
    };
    let mut terms: Vec<(usize, Term)> = covering_bigrams(&s)
        .into_iter()
        .map(|(position, gram)| (position, Term::from_field_text(field, &gram)))
        .collect();
    Some(match terms.len() {
        0 => return None,
        1 => Box::new(TermQuery::new(terms.remove(0).1, IndexRecordOption::Basic)),
        _ => Box::new(PhraseQuery::new_with_offset(terms)),
    })
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
/// exact title, title prefix (in the title, or the title's reading), and `author` (every
/// term found in the author or the author's reading), each at its constant.
pub fn clauses(
    title: Field,
    readings: Field,
    normalized: &str,
    author: Option<Box<dyn Query>>,
) -> Vec<(Occur, Box<dyn Query>)> {
    let reading = query_reading(normalized);
    let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (closed, bonus) in [(true, EXACT_TITLE), (false, TITLE_PREFIX)] {
        let mut either: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(q) = anchored_query(title, normalized, closed) {
            either.push((Occur::Should, q));
        }
        if let Some(q) = reading
            .as_deref()
            .and_then(|r| anchored_query(readings, r, closed))
        {
            either.push((Occur::Should, q));
        }
        if either.is_empty() {
            continue;
        }
        let query: Box<dyn Query> = Box::new(BooleanQuery::new(either));
        out.push((Occur::Should, Box::new(ConstScoreQuery::new(query, bonus))));
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
