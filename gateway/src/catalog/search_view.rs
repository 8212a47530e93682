//! `GET /api/v1/titles` as JSON (API.md "Search"): the page of hits, the facet counts when
//! asked for, and the suggestions of a search without hits (もしかして).

use kitsuki_proto::catalog::{FacetCount, Facets, SearchTitlesResponse};
use kitsuki_proto::search::{ndc_class_name, ndc_class_name_en, parse_ndc_class};
use serde::Serialize;

use crate::catalog::views::TitleSummaryView;
use crate::web::error::Lang;

/// `GET /api/v1/titles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchResultView {
    /// Matching titles, or works when editions are grouped.
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    pub hits: Vec<TitleSummaryView>,
    /// With `facets=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<FacetsView>,
    /// Titles and authors near a query that found nothing, by reading; empty otherwise.
    pub suggestions: Vec<String>,
}

impl SearchResultView {
    /// `page` and `per_page` are the ones asked for: they were validated, and a client
    /// pages with the values it sent.
    pub fn new(response: &SearchTitlesResponse, page: u32, per_page: u32, lang: Lang) -> Self {
        SearchResultView {
            total: response.total,
            page,
            per_page,
            hits: response
                .hits
                .iter()
                .map(|hit| TitleSummaryView::new(hit, lang))
                .collect(),
            facets: response.facets.as_ref().map(FacetsView::new),
            suggestions: response.suggestions.clone(),
        }
    }
}

/// One facet value and how many matching titles have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetView {
    pub value: String,
    pub count: u64,
}

/// An NDC main class with its names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassFacetView {
    /// The first digit, `0` to `9`.
    pub value: String,
    /// 文学
    pub name: &'static str,
    /// Literature
    pub name_en: &'static str,
    pub count: u64,
}

/// Facet counts over every match of a search, zero counts left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetsView {
    /// Branch code → matching titles on the shelf there now.
    pub available_branches: Vec<FacetView>,
    /// `book` / `magazine` / `av`.
    pub material_types: Vec<FacetView>,
    pub ndc_classes: Vec<ClassFacetView>,
    /// First year of the decade (`1990`).
    pub decades: Vec<FacetView>,
}

impl FacetsView {
    pub fn new(f: &Facets) -> Self {
        let plain = |counts: &[FacetCount]| {
            counts
                .iter()
                .map(|c| FacetView {
                    value: c.value.clone(),
                    count: c.count,
                })
                .collect()
        };
        FacetsView {
            available_branches: plain(&f.available_branches),
            material_types: plain(&f.material_types),
            ndc_classes: f
                .ndc_classes
                .iter()
                .filter_map(|c| {
                    let class = parse_ndc_class(&c.value)?;
                    Some(ClassFacetView {
                        value: c.value.clone(),
                        name: ndc_class_name(class)?,
                        name_en: ndc_class_name_en(class)?,
                        count: c.count,
                    })
                })
                .collect(),
            decades: plain(&f.decades),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_carry_their_names_and_an_unknown_one_is_dropped() {
        let count = |value: &str, count| FacetCount {
            value: value.into(),
            count,
        };
        let view = FacetsView::new(&Facets {
            available_branches: vec![count("kitsuki", 3)],
            material_types: vec![count("book", 4)],
            ndc_classes: vec![count("9", 2), count("x", 1)],
            decades: vec![count("1990", 1)],
        });
        assert_eq!(
            view.ndc_classes,
            [ClassFacetView {
                value: "9".into(),
                name: "文学",
                name_en: "Literature",
                count: 2
            }]
        );
        assert_eq!(view.available_branches[0].count, 3);
        assert_eq!(view.decades[0].value, "1990");
    }
}
