//! The order of a page of hits: the sort orders a search offers, one hit's sort keys, and
//! the selection of the best `k` of any number of matches without sorting them all.
//!
//! Relevance is the score (with the tiers of issue 10 in it, `tiers.rs`), then the newer
//! edition (publication year), then the newer record; "newest" is the publication year,
//! then the newer record; "reading" (五十音順) is the title's reading. A reading is a string:
//! its column's ordinals order the strings of one segment only, so a reading sort selects
//! the best `k` in each segment by ordinal and [`merge`] orders those few by the strings.

use std::cmp::Ordering;

use tantivy::{DocId, Score, SegmentOrdinal};

pub use kitsuki_proto::search::SortOrder;

/// Publication year of a title without one: below every year.
pub const NO_YEAR: i64 = i64::MIN;

/// One hit while a search ranks: its sort keys and where it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// 0 for a sort that is not by relevance, or without a query.
    pub score: Score,
    /// Publication year, [`NO_YEAR`] without one (and for a browse of new arrivals).
    pub year: i64,
    pub created_micros: i64,
    /// The ordinal of the title's reading key in its segment's column (reading sort only).
    pub reading_ord: u64,
    pub segment: SegmentOrdinal,
    pub doc: DocId,
    /// How many editions this hit stands for (1 unless editions are grouped).
    pub editions: u32,
}

impl Hit {
    /// `Less` when `self` comes before `other` in `order`. Ties end in index order, so
    /// that the same search gives the same page every time. For [`SortOrder::Reading`]
    /// this compares ordinals, which is right within one segment only.
    pub fn rank(&self, other: &Hit, order: SortOrder) -> Ordering {
        let first = match order {
            SortOrder::Relevance => other
                .score
                .total_cmp(&self.score)
                .then(other.year.cmp(&self.year)),
            SortOrder::Newest => other.year.cmp(&self.year),
            SortOrder::Reading => self
                .reading_ord
                .cmp(&other.reading_ord)
                .then(other.year.cmp(&self.year)),
        };
        first
            .then(other.created_micros.cmp(&self.created_micros))
            .then(self.segment.cmp(&other.segment))
            .then(self.doc.cmp(&other.doc))
    }

    /// Whether `self` stands for its work better than `other` (editions grouped): the best
    /// match, then the newer edition; comparable across segments, unlike a reading ordinal.
    pub fn better_edition_than(&self, other: &Hit, order: SortOrder) -> bool {
        let order = match order {
            SortOrder::Reading => SortOrder::Relevance,
            other => other,
        };
        self.rank(other, order) == Ordering::Less
    }
}

/// The best `k` hits seen so far. Hits are appended to a buffer of `2k`; when it is full
/// it is cut to the best `k` (a selection, not a sort), and the `k`-th becomes the bar a
/// later hit must beat. Amortised O(1) per hit, whatever the number of matches.
pub struct TopHits {
    k: usize,
    order: SortOrder,
    hits: Vec<Hit>,
    bar: Option<Hit>,
}

impl TopHits {
    pub fn new(k: usize, order: SortOrder, capacity_cap: usize) -> Self {
        TopHits {
            k,
            order,
            hits: Vec::with_capacity(k.saturating_mul(2).min(capacity_cap)),
            bar: None,
        }
    }

    /// Whether a hit of this score could still enter (a cheap test before its other keys
    /// are read; ties decide on more).
    pub fn may_enter(&self, score: Score) -> bool {
        self.order != SortOrder::Relevance || self.bar.is_none_or(|bar| score >= bar.score)
    }

    pub fn push(&mut self, hit: Hit) {
        if self
            .bar
            .is_some_and(|bar| hit.rank(&bar, self.order) != Ordering::Less)
        {
            return;
        }
        self.hits.push(hit);
        if self.hits.len() >= self.k.saturating_mul(2).max(self.k + 1) {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.hits.len() > self.k && self.k > 0 {
            let order = self.order;
            self.hits
                .select_nth_unstable_by(self.k - 1, |a, b| a.rank(b, order));
            self.hits.truncate(self.k);
            self.bar = self.hits.last().copied();
        }
    }

    /// The best `k`, best first.
    pub fn into_sorted(mut self) -> Vec<Hit> {
        self.cut();
        let order = self.order;
        self.hits.sort_unstable_by(|a, b| a.rank(b, order));
        self.hits
    }
}

/// The page `offset..offset + limit` of the best hits of every segment. `reading` gives
/// a hit's reading key, read only for [`SortOrder::Reading`], where ordinals of different
/// segments cannot be compared.
pub fn merge<E>(
    per_segment: Vec<TopHits>,
    order: SortOrder,
    offset: usize,
    limit: usize,
    mut reading: impl FnMut(&Hit) -> Result<String, E>,
) -> Result<Vec<Hit>, E> {
    let mut all: Vec<Hit> = per_segment
        .into_iter()
        .flat_map(TopHits::into_sorted)
        .collect();
    if order == SortOrder::Reading {
        let mut keyed = all
            .into_iter()
            .map(|hit| Ok((reading(&hit)?, hit)))
            .collect::<Result<Vec<_>, E>>()?;
        keyed.sort_by(|(a, x), (b, y)| {
            a.cmp(b)
                .then(y.year.cmp(&x.year))
                .then(y.created_micros.cmp(&x.created_micros))
                .then(x.segment.cmp(&y.segment))
                .then(x.doc.cmp(&y.doc))
        });
        all = keyed.into_iter().map(|(_, hit)| hit).collect();
    } else {
        all.sort_by(|a, b| a.rank(b, order));
    }
    Ok(all.into_iter().skip(offset).take(limit).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(score: f32, year: i64, created: i64, doc: u32) -> Hit {
        Hit {
            score,
            year,
            created_micros: created,
            reading_ord: 0,
            segment: 0,
            doc,
            editions: 1,
        }
    }

    #[test]
    fn relevance_puts_the_newer_edition_first_at_equal_score() {
        let old = hit(2.0, 1950, 10, 1);
        let new = hit(2.0, 2005, 5, 2);
        let better = hit(3.0, 1900, 1, 3);
        assert_eq!(new.rank(&old, SortOrder::Relevance), Ordering::Less);
        assert_eq!(better.rank(&new, SortOrder::Relevance), Ordering::Less);
        // Same year: the newer record.
        let a = hit(2.0, 2005, 9, 4);
        assert_eq!(a.rank(&new, SortOrder::Relevance), Ordering::Less);
        // A title without a year after one with a year.
        let none = hit(2.0, NO_YEAR, 99, 5);
        assert_eq!(old.rank(&none, SortOrder::Relevance), Ordering::Less);
    }

    #[test]
    fn newest_ignores_the_score_and_reading_the_year_only_at_equal_reading() {
        let better_old = hit(9.0, 1950, 1, 1);
        let worse_new = hit(1.0, 2020, 1, 2);
        assert_eq!(
            worse_new.rank(&better_old, SortOrder::Newest),
            Ordering::Less
        );
        let mut a = hit(0.0, 1950, 1, 1);
        let mut b = hit(0.0, 2020, 1, 2);
        a.reading_ord = 1;
        b.reading_ord = 2;
        assert_eq!(a.rank(&b, SortOrder::Reading), Ordering::Less);
        b.reading_ord = 1;
        assert_eq!(b.rank(&a, SortOrder::Reading), Ordering::Less);
    }

    #[test]
    fn the_best_edition_of_a_reading_sort_is_the_best_match() {
        let mut a = hit(5.0, 1990, 1, 1);
        let mut b = hit(1.0, 2020, 1, 2);
        a.reading_ord = 9;
        b.reading_ord = 0;
        assert!(a.better_edition_than(&b, SortOrder::Reading));
        assert!(b.better_edition_than(&a, SortOrder::Newest));
    }

    #[test]
    fn top_hits_keep_the_best_k_in_order_whatever_the_arrival() {
        for order in SortOrder::ALL {
            let hits: Vec<Hit> = (0..500u32)
                .map(|i| {
                    let mut h = hit(
                        ((i * 7919) % 97) as f32,
                        1900 + i64::from((i * 31) % 120),
                        i64::from(i),
                        i,
                    );
                    h.reading_ord = u64::from((i * 13) % 89);
                    h
                })
                .collect();
            let mut top = TopHits::new(25, order, 4000);
            for h in &hits {
                top.push(*h);
            }
            let mut expected = hits.clone();
            expected.sort_by(|a, b| a.rank(b, order));
            expected.truncate(25);
            assert_eq!(top.into_sorted(), expected, "{order:?}");
        }
    }

    #[test]
    fn a_reading_merge_orders_the_segments_best_by_their_strings() {
        // Segment 0 reads "か…", segment 1 "あ…": ordinal 0 of each is not the same key.
        let keys = [["かわ", "さくら"], ["あめ", "やま"]];
        let mut per_segment = Vec::new();
        for (segment, names) in keys.iter().enumerate() {
            let mut top = TopHits::new(2, SortOrder::Reading, 8);
            for (ord, _) in names.iter().enumerate() {
                let mut h = hit(0.0, NO_YEAR, 0, ord as u32);
                h.segment = segment as u32;
                h.reading_ord = ord as u64;
                top.push(h);
            }
            per_segment.push(top);
        }
        let page = merge(per_segment, SortOrder::Reading, 1, 2, |h| {
            Ok::<_, ()>(keys[h.segment as usize][h.doc as usize].to_string())
        })
        .unwrap();
        let names: Vec<&str> = page
            .iter()
            .map(|h| keys[h.segment as usize][h.doc as usize])
            .collect();
        assert_eq!(names, ["かわ", "さくら"]);
    }
}
