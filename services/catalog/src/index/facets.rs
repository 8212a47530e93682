//! Facet counts of a search (issue 10): how many of the matching titles are on the shelf
//! at each branch now, of each material type, in each NDC main class and publication
//! decade. Counted while the search walks its matches (it visits each one anyway), from
//! columns; titles, not works, are counted when editions are grouped.

use std::collections::BTreeMap;

use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, SegmentReader};

/// The counts, each list in a fixed order (branches and types by name, classes 0–9,
/// decades ascending), zero counts left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facets {
    /// Branch code → matching titles with an item on the shelf there.
    pub available_branches: Vec<(String, u64)>,
    /// `book` / `magazine` / `av` → matching titles.
    pub material_types: Vec<(String, u64)>,
    /// NDC main class (0–9) → matching titles.
    pub ndc_classes: Vec<(u8, u64)>,
    /// First year of the decade (1990) → matching titles.
    pub decades: Vec<(i64, u64)>,
}

/// The decade a year is in: 1999 → 1990, -5 → -10.
pub fn decade_of(year: i64) -> i64 {
    year.div_euclid(10) * 10
}

/// The running tally over all segments.
#[derive(Debug, Default)]
pub struct Tally {
    available_branches: BTreeMap<String, u64>,
    material_types: BTreeMap<String, u64>,
    ndc_classes: [u64; 10],
    decades: BTreeMap<i64, u64>,
}

/// The columns of one segment and its counts by ordinal, folded into the [`Tally`] by
/// [`Tally::end_segment`] (ordinals are the segment's own).
pub struct SegmentTally {
    branches: Option<StrColumn>,
    branch_counts: Vec<u64>,
    types: Option<StrColumn>,
    type_counts: Vec<u64>,
    ndc: Column<u64>,
    year: Column<i64>,
    ndc_counts: [u64; 10],
    decades: BTreeMap<i64, u64>,
}

impl Tally {
    pub fn segment(
        &self,
        reader: &SegmentReader,
        names: &FacetColumns,
    ) -> tantivy::Result<SegmentTally> {
        let fast = reader.fast_fields();
        let branches = fast.str(names.available_branches)?;
        let types = fast.str(names.material_type)?;
        let count = |c: &Option<StrColumn>| c.as_ref().map_or(0, |c| c.num_terms());
        Ok(SegmentTally {
            branch_counts: vec![0; count(&branches)],
            type_counts: vec![0; count(&types)],
            branches,
            types,
            ndc: fast.u64(names.ndc_class)?,
            year: fast.i64(names.year)?,
            ndc_counts: [0; 10],
            decades: BTreeMap::new(),
        })
    }

    pub fn end_segment(&mut self, segment: SegmentTally) -> tantivy::Result<()> {
        let mut name = String::new();
        for (column, counts, into) in [
            (
                &segment.branches,
                &segment.branch_counts,
                &mut self.available_branches,
            ),
            (
                &segment.types,
                &segment.type_counts,
                &mut self.material_types,
            ),
        ] {
            let Some(column) = column else { continue };
            for (ord, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                name.clear();
                if column.ord_to_str(ord as u64, &mut name)? {
                    *into.entry(name.clone()).or_default() += n;
                }
            }
        }
        for (class, n) in segment.ndc_counts.iter().enumerate() {
            self.ndc_classes[class] += n;
        }
        for (decade, n) in segment.decades {
            *self.decades.entry(decade).or_default() += n;
        }
        Ok(())
    }

    pub fn finish(self) -> Facets {
        Facets {
            available_branches: self.available_branches.into_iter().collect(),
            material_types: self.material_types.into_iter().collect(),
            ndc_classes: (0u8..10)
                .zip(self.ndc_classes)
                .filter(|(_, n)| *n > 0)
                .collect(),
            decades: self.decades.into_iter().collect(),
        }
    }
}

impl SegmentTally {
    /// Counts one matching document.
    pub fn count(&mut self, doc: DocId) {
        if let Some(column) = &self.branches {
            for ord in column.term_ords(doc) {
                if let Some(n) = self.branch_counts.get_mut(ord as usize) {
                    *n += 1;
                }
            }
        }
        if let Some(column) = &self.types
            && let Some(ord) = column.term_ords(doc).next()
            && let Some(n) = self.type_counts.get_mut(ord as usize)
        {
            *n += 1;
        }
        if let Some(class) = self.ndc.first(doc)
            && let Some(n) = self.ndc_counts.get_mut(class as usize)
        {
            *n += 1;
        }
        if let Some(year) = self.year.first(doc) {
            *self.decades.entry(decade_of(year)).or_default() += 1;
        }
    }
}

/// The names of the columns facets are counted from.
pub struct FacetColumns {
    pub available_branches: &'static str,
    pub material_type: &'static str,
    pub ndc_class: &'static str,
    pub year: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_start_at_the_round_year() {
        assert_eq!(decade_of(1990), 1990);
        assert_eq!(decade_of(1999), 1990);
        assert_eq!(decade_of(2000), 2000);
        assert_eq!(decade_of(5), 0);
        assert_eq!(decade_of(-5), -10);
    }
}
