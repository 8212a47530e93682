//! What a results page offers to refine a search, as plain links (no JavaScript needed,
//! issue 10): the facets — on the shelf now at each branch, material type, NDC main class,
//! publication decade — each value a link to the search narrowed by it (and a link that
//! lifts a filter already set), the sort orders, and for a search without hits the
//! suggestions near it by reading (もしかして).

use kitsuki_proto::Branch;
use kitsuki_proto::catalog::{FacetCount, Facets};
use kitsuki_proto::search::{SortOrder, ndc_class_name, parse_decade, parse_ndc_class};
use serde::Serialize;

use crate::catalog::search::{SearchParams, percent_encode};
use crate::catalog::views::parse_material;

/// One value of a facet as a link.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct FacetLink {
    pub label: String,
    pub count: u64,
    pub href: String,
}

/// One facet: its heading, its values, and, when the search is filtered by it, the
/// value chosen and the link that lifts the filter.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct FacetGroup {
    pub heading: &'static str,
    pub links: Vec<FacetLink>,
    pub chosen: Option<String>,
    pub clear_href: Option<String>,
}

/// A sort order as a link; the current one is not a link.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SortLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// A suggestion: the text and the search for it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SuggestionLink {
    pub text: String,
    pub href: String,
}

/// `/search?…` of `params` on its first page.
pub fn href(params: &SearchParams) -> String {
    let query = params.query_string(1);
    if query.is_empty() {
        "/search".to_string()
    } else {
        format!("/search?{query}")
    }
}

/// Rule M1's name of a material type code, from the one table the pages use.
fn rule_m1_label(code: &str) -> Option<&'static str> {
    Some(crate::catalog::views::material_label(Some(code))).filter(|l| !l.is_empty())
}

/// The facet groups of a results page, in the order they are shown. A group with no
/// value and no filter set is left out.
pub fn facet_groups(params: &SearchParams, facets: &Facets) -> Vec<FacetGroup> {
    let base = SearchParams {
        page: 1,
        ..params.clone()
    };
    let mut groups = Vec::new();

    // On the shelf now, at a branch: the branch filter with "available only".
    let at_branch = params.available_only.then_some(params.branch).flatten();
    groups.push(group(
        "今すぐ借りられる館",
        &facets.available_branches,
        |value| Branch::parse(value).ok().map(|b| b.name_ja().to_string()),
        |value| {
            Branch::parse(value).ok().map(|b| SearchParams {
                branch: Some(b),
                available_only: true,
                ..base.clone()
            })
        },
        at_branch.map(|b| {
            (
                b.name_ja().to_string(),
                SearchParams {
                    branch: None,
                    available_only: false,
                    ..base.clone()
                },
            )
        }),
    ));
    groups.push(group(
        "資料の種類",
        &facets.material_types,
        |value| rule_m1_label(value).map(str::to_string),
        |value| {
            parse_material(value).map(|m| SearchParams {
                material: Some(m),
                ..base.clone()
            })
        },
        params.material.map(|m| {
            let code = crate::catalog::views::material_code(m).unwrap_or("");
            (
                rule_m1_label(code).unwrap_or_default().to_string(),
                SearchParams {
                    material: None,
                    ..base.clone()
                },
            )
        }),
    ));
    groups.push(group(
        "分類（NDC）",
        &facets.ndc_classes,
        |value| {
            let class = parse_ndc_class(value)?;
            Some(format!("{class} {}", ndc_class_name(class)?))
        },
        |value| {
            parse_ndc_class(value).map(|class| SearchParams {
                ndc_class: Some(class),
                ..base.clone()
            })
        },
        params.ndc_class.map(|class| {
            (
                format!("{class} {}", ndc_class_name(class).unwrap_or("")),
                SearchParams {
                    ndc_class: None,
                    ..base.clone()
                },
            )
        }),
    ));
    groups.push(group(
        "出版年",
        &facets.decades,
        |value| parse_decade(value).map(|d| format!("{d}年代")),
        |value| {
            parse_decade(value).map(|decade| SearchParams {
                decade: Some(decade),
                ..base.clone()
            })
        },
        params.decade.map(|d| {
            (
                format!("{d}年代"),
                SearchParams {
                    decade: None,
                    ..base.clone()
                },
            )
        }),
    ));
    groups
        .into_iter()
        .filter(|g| !g.links.is_empty() || g.chosen.is_some())
        .collect()
}

/// One group: each counted value labelled and linked; a value that cannot be (a code
/// the gateway does not know) is left out rather than shown raw.
fn group(
    heading: &'static str,
    counts: &[FacetCount],
    label: impl Fn(&str) -> Option<String>,
    narrowed: impl Fn(&str) -> Option<SearchParams>,
    chosen: Option<(String, SearchParams)>,
) -> FacetGroup {
    // Once a filter is set its facet would list that one value only: show what is chosen
    // and how to lift it instead.
    let links = if chosen.is_some() {
        Vec::new()
    } else {
        counts
            .iter()
            .filter_map(|c| {
                Some(FacetLink {
                    label: label(&c.value)?,
                    count: c.count,
                    href: href(&narrowed(&c.value)?),
                })
            })
            .collect()
    };
    let (chosen, clear_href) = match chosen {
        Some((label, lifted)) => (Some(label), Some(href(&lifted))),
        None => (None, None),
    };
    FacetGroup {
        heading,
        links,
        chosen,
        clear_href,
    }
}

/// The sort orders as links, each on the first page.
pub fn sort_links(params: &SearchParams) -> Vec<SortLink> {
    SortOrder::ALL
        .iter()
        .map(|&sort| SortLink {
            label: sort.name_ja(),
            href: href(&SearchParams {
                sort,
                page: 1,
                ..params.clone()
            }),
            current: sort == params.sort,
        })
        .collect()
}

/// The suggestions as searches for them (the other filters dropped: they found nothing).
pub fn suggestion_links(suggestions: &[String]) -> Vec<SuggestionLink> {
    suggestions
        .iter()
        .map(|text| SuggestionLink {
            text: text.clone(),
            href: format!("/search?q={}", percent_encode(text)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitsuki_proto::catalog::MaterialType;

    fn count(value: &str, count: u64) -> FacetCount {
        FacetCount {
            value: value.into(),
            count,
        }
    }

    fn facets() -> Facets {
        Facets {
            available_branches: vec![count("kitsuki", 3), count("ota", 1)],
            material_types: vec![count("book", 4), count("magazine", 1)],
            ndc_classes: vec![count("9", 2), count("x", 1)],
            decades: vec![count("1990", 1), count("2000", 3)],
        }
    }

    fn query(q: &str) -> SearchParams {
        SearchParams {
            q: q.into(),
            page: 3,
            ..SearchParams::default()
        }
    }

    #[test]
    fn each_value_links_to_the_search_narrowed_by_it_on_its_first_page() {
        let groups = facet_groups(&query("海"), &facets());
        let headings: Vec<&str> = groups.iter().map(|g| g.heading).collect();
        assert_eq!(
            headings,
            ["今すぐ借りられる館", "資料の種類", "分類（NDC）", "出版年"]
        );
        assert_eq!(
            groups[0].links[0],
            FacetLink {
                label: "杵築市立図書館".into(),
                count: 3,
                href: "/search?q=%E6%B5%B7&branch=kitsuki&available=true".into()
            }
        );
        assert_eq!(groups[1].links[1].label, "雑誌");
        assert_eq!(groups[1].links[1].href, "/search?q=%E6%B5%B7&type=magazine");
        // An unknown class is not shown raw.
        assert_eq!(groups[2].links.len(), 1);
        assert_eq!(groups[2].links[0].label, "9 文学");
        assert_eq!(groups[2].links[0].href, "/search?q=%E6%B5%B7&ndc=9");
        assert_eq!(groups[3].links[0].label, "1990年代");
        assert_eq!(groups[3].links[0].href, "/search?q=%E6%B5%B7&decade=1990");
    }

    #[test]
    fn a_filter_set_shows_what_is_chosen_and_how_to_lift_it() {
        let params = SearchParams {
            material: Some(MaterialType::Magazine),
            ndc_class: Some(9),
            ..query("海")
        };
        let groups = facet_groups(&params, &facets());
        let kind = groups.iter().find(|g| g.heading == "資料の種類").unwrap();
        assert!(kind.links.is_empty());
        assert_eq!(kind.chosen.as_deref(), Some("雑誌"));
        assert_eq!(
            kind.clear_href.as_deref(),
            Some("/search?q=%E6%B5%B7&ndc=9")
        );
        let class = groups.iter().find(|g| g.heading == "分類（NDC）").unwrap();
        assert_eq!(class.chosen.as_deref(), Some("9 文学"));
        assert_eq!(
            class.clear_href.as_deref(),
            Some("/search?q=%E6%B5%B7&type=magazine")
        );
    }

    #[test]
    fn an_empty_facet_is_left_out() {
        let groups = facet_groups(&query("海"), &Facets::default());
        assert!(groups.is_empty());
    }

    #[test]
    fn sorts_are_links_but_the_current_one() {
        let links = sort_links(&query("海"));
        assert_eq!(links.len(), 3);
        assert!(links[0].current && !links[1].current);
        assert_eq!(links[0].href, "/search?q=%E6%B5%B7");
        assert_eq!(links[2].href, "/search?q=%E6%B5%B7&sort=reading");
        assert_eq!(links[2].label, "五十音順");
    }

    #[test]
    fn suggestions_are_searches_for_them() {
        let links = suggestion_links(&["夏目, 漱石".to_string()]);
        assert_eq!(
            links[0].href,
            "/search?q=%E5%A4%8F%E7%9B%AE%2C%20%E6%BC%B1%E7%9F%B3"
        );
    }

    #[test]
    fn a_results_page_shows_sorts_facets_and_other_editions_as_links() {
        use crate::catalog::pages::render_results;
        use crate::test_support::{TITLE_ID, summary};
        use crate::web::LayoutView;
        use kitsuki_proto::catalog::{MaterialType, SearchTitlesResponse};
        let mut hit = summary("坊っちゃん", MaterialType::Book, &[("kitsuki", 2, 1)]);
        hit.editions = 3;
        let response = SearchTitlesResponse {
            total: 1,
            page: 1,
            per_page: 20,
            hits: vec![hit],
            facets: Some(facets()),
            suggestions: Vec::new(),
        };
        let html = render_results(&LayoutView::default(), &query("海"), &response).unwrap();
        assert!(html.contains("<summary>絞り込み</summary>"));
        assert!(
            html.contains("href=\"/search?q=%E6%B5%B7&amp;ndc=9\">9 文学</a>"),
            "{html}"
        );
        assert!(html.contains("1990年代"));
        assert!(html.contains("<span aria-current=\"true\">適合度順</span>"));
        assert!(html.contains("href=\"/search?q=%E6%B5%B7&amp;sort=reading\">五十音順</a>"));
        assert!(html.contains(&format!(
            "href=\"/titles/{TITLE_ID}#editions\">ほかの版 2件</a>"
        )));
        assert!(!html.contains("もしかして"));
    }

    #[test]
    fn a_results_page_without_hits_suggests_by_reading() {
        use crate::catalog::pages::render_results;
        use crate::web::LayoutView;
        use kitsuki_proto::catalog::SearchTitlesResponse;
        let response = SearchTitlesResponse {
            total: 0,
            page: 1,
            per_page: 20,
            hits: Vec::new(),
            facets: Some(Facets::default()),
            suggestions: vec!["こころ".to_string(), "夏目, 漱石".to_string()],
        };
        let html = render_results(&LayoutView::default(), &query("ここら"), &response).unwrap();
        assert!(html.contains("もしかして:"));
        assert!(html.contains("<a href=\"/search?q=%E3%81%93%E3%81%93%E3%82%8D\">こころ</a>"));
        assert!(html.contains(">夏目, 漱石</a>"));
        assert!(
            !html.contains("<summary>絞り込み</summary>"),
            "no facet to show"
        );
        assert!(!html.contains("並び順"), "nothing to sort");
    }
}
