//! The catalogue search query (`q`, `type`, `branch`, `available`, `ndc`, `decade`,
//! `sort`, `facets`, `group_editions`, `page`, `per_page`), read and checked once for both
//! the JSON API and the results page, so both refuse the same inputs with the same codes.

use kitsuki_proto::Branch;
use kitsuki_proto::catalog::{MaterialType, SearchTitlesRequest};
use kitsuki_proto::search::{self, SortOrder};
use serde::Deserialize;

use crate::catalog::views::{material_code, parse_material};
use crate::web::error::ApiError;

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;
/// Deep pages cost the search index more than they help anyone; a patron refines the
/// query long before page 10 000.
pub const MAX_PAGE: u32 = 10_000;
/// A query longer than this is not a search a person typed.
pub const MAX_QUERY_CHARS: usize = 200;

/// The query string as sent. Every field is text so that a wrong value is refused by
/// [`SearchParams::parse`] with a message naming it, not by the deserializer. An empty
/// value counts as absent, which is what an HTML form sends for an untouched field.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawSearchParams {
    pub q: Option<String>,
    #[serde(rename = "type")]
    pub material: Option<String>,
    pub branch: Option<String>,
    pub available: Option<String>,
    pub ndc: Option<String>,
    pub decade: Option<String>,
    pub sort: Option<String>,
    pub facets: Option<String>,
    pub group_editions: Option<String>,
    pub page: Option<String>,
    pub per_page: Option<String>,
}

/// A checked search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParams {
    /// Empty lists every title, newest first (API.md).
    pub q: String,
    pub material: Option<MaterialType>,
    pub branch: Option<Branch>,
    pub available_only: bool,
    /// NDC main class, 0 to 9.
    pub ndc_class: Option<u8>,
    /// First year of a decade.
    pub decade: Option<i32>,
    pub sort: SortOrder,
    /// Count facets (the results page always does).
    pub facets: bool,
    /// One hit per work (the results page always groups).
    pub group_editions: bool,
    pub page: u32,
    pub per_page: u32,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            q: String::new(),
            material: None,
            branch: None,
            available_only: false,
            ndc_class: None,
            decade: None,
            sort: SortOrder::Relevance,
            facets: false,
            group_editions: false,
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn flag(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false" | "0") => Ok(false),
        // "on" is what a checkbox without a value attribute sends.
        Some("true" | "1" | "on") => Ok(true),
        Some(_) => Err(ApiError::invalid_input(format!(
            "{name} must be true or false"
        ))),
    }
}

fn number(name: &str, value: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let Some(text) = value else {
        return Ok(default);
    };
    match text.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_input(format!(
            "{name} must be a whole number from 1 to {max}"
        ))),
    }
}

impl SearchParams {
    pub fn parse(raw: &RawSearchParams) -> Result<SearchParams, ApiError> {
        let q = raw.q.as_deref().unwrap_or("").trim().to_string();
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(ApiError::invalid_input(format!(
                "q must be at most {MAX_QUERY_CHARS} characters"
            )));
        }
        let material = match present(&raw.material) {
            None => None,
            Some(code) => Some(
                parse_material(code)
                    .ok_or_else(|| ApiError::invalid_input("type must be book, magazine or av"))?,
            ),
        };
        let branch = present(&raw.branch).map(Branch::parse).transpose()?;
        let available_only = flag("available", present(&raw.available))?;
        let ndc_class = present(&raw.ndc)
            .map(|c| {
                search::parse_ndc_class(c)
                    .ok_or_else(|| ApiError::invalid_input("ndc must be one digit, 0 to 9"))
            })
            .transpose()?;
        let decade = present(&raw.decade)
            .map(|d| {
                search::parse_decade(d).ok_or_else(|| {
                    ApiError::invalid_input(format!(
                        "decade must be the first year of a decade, 0 to {}",
                        search::MAX_DECADE
                    ))
                })
            })
            .transpose()?;
        let sort = SortOrder::parse(present(&raw.sort).unwrap_or(""))
            .ok_or_else(|| ApiError::invalid_input("sort must be relevance, newest or reading"))?;
        let facets = flag("facets", present(&raw.facets))?;
        let group_editions = flag("group_editions", present(&raw.group_editions))?;
        let page = number("page", present(&raw.page), 1, MAX_PAGE)?;
        let per_page = number(
            "per_page",
            present(&raw.per_page),
            DEFAULT_PER_PAGE,
            MAX_PER_PAGE,
        )?;
        Ok(SearchParams {
            q,
            material,
            branch,
            available_only,
            ndc_class,
            decade,
            sort,
            facets,
            group_editions,
            page,
            per_page,
        })
    }

    pub fn to_request(&self) -> SearchTitlesRequest {
        SearchTitlesRequest {
            q: self.q.clone(),
            r#type: self.material.unwrap_or(MaterialType::Unspecified) as i32,
            branch: self
                .branch
                .map(|b| b.code().to_string())
                .unwrap_or_default(),
            available_only: self.available_only,
            page: self.page,
            per_page: self.per_page,
            sort: self.sort.code().to_string(),
            facets: self.facets,
            ndc_class: self.ndc_class.map(u32::from),
            decade: self.decade,
            group_editions: self.group_editions,
        }
    }

    /// The query string of this search at another page, for the results page's links.
    /// Only what differs from the defaults is written, so links stay short.
    pub fn query_string(&self, page: u32) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        if let Some(code) = self.material.and_then(material_code) {
            pairs.push(("type", code.to_string()));
        }
        if let Some(branch) = self.branch {
            pairs.push(("branch", branch.code().to_string()));
        }
        if self.available_only {
            pairs.push(("available", "true".to_string()));
        }
        if let Some(class) = self.ndc_class {
            pairs.push(("ndc", class.to_string()));
        }
        if let Some(decade) = self.decade {
            pairs.push(("decade", decade.to_string()));
        }
        if self.sort != SortOrder::Relevance {
            pairs.push(("sort", self.sort.code().to_string()));
        }
        if self.per_page != DEFAULT_PER_PAGE {
            pairs.push(("per_page", self.per_page.to_string()));
        }
        if page != 1 {
            pairs.push(("page", page.to_string()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, which is always safe
/// in a query value (Japanese text included, as UTF-8 bytes).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kitsuki_proto::ErrorCode;

    fn raw(pairs: &[(&str, &str)]) -> RawSearchParams {
        let mut raw = RawSearchParams::default();
        for (k, v) in pairs {
            let v = Some((*v).to_string());
            match *k {
                "q" => raw.q = v,
                "type" => raw.material = v,
                "branch" => raw.branch = v,
                "available" => raw.available = v,
                "ndc" => raw.ndc = v,
                "decade" => raw.decade = v,
                "sort" => raw.sort = v,
                "facets" => raw.facets = v,
                "group_editions" => raw.group_editions = v,
                "page" => raw.page = v,
                "per_page" => raw.per_page = v,
                _ => unreachable!(),
            }
        }
        raw
    }

    fn refused(pairs: &[(&str, &str)]) -> ErrorCode {
        SearchParams::parse(&raw(pairs)).unwrap_err().code()
    }

    #[test]
    fn an_empty_query_browses_with_the_defaults() {
        let p = SearchParams::parse(&RawSearchParams::default()).unwrap();
        assert_eq!(p, SearchParams::default());
        assert_eq!(p.page, 1);
        assert_eq!(p.per_page, 20);
        // What an untouched HTML form sends.
        let form = raw(&[("q", ""), ("type", ""), ("branch", ""), ("page", "")]);
        assert_eq!(SearchParams::parse(&form).unwrap(), SearchParams::default());
    }

    #[test]
    fn every_filter_is_read() {
        let p = SearchParams::parse(&raw(&[
            ("q", " 漱石 "),
            ("type", "book"),
            ("branch", "yamaga"),
            ("available", "true"),
            ("page", "3"),
            ("per_page", "100"),
        ]))
        .unwrap();
        assert_eq!(p.q, "漱石");
        assert_eq!(p.material, Some(MaterialType::Book));
        assert_eq!(p.branch, Some(Branch::Yamaga));
        assert!(p.available_only);
        assert_eq!((p.page, p.per_page), (3, 100));
        let request = p.to_request();
        assert_eq!(request.branch, "yamaga");
        assert_eq!(request.r#type, MaterialType::Book as i32);
    }

    #[test]
    fn page_zero_is_refused() {
        assert_eq!(refused(&[("page", "0")]), ErrorCode::InvalidInput);
        assert_eq!(refused(&[("page", "-1")]), ErrorCode::InvalidInput);
        assert_eq!(refused(&[("page", "two")]), ErrorCode::InvalidInput);
        assert_eq!(refused(&[("page", "10001")]), ErrorCode::InvalidInput);
    }

    #[test]
    fn per_page_above_100_is_refused() {
        assert_eq!(refused(&[("per_page", "1000")]), ErrorCode::InvalidInput);
        assert_eq!(refused(&[("per_page", "101")]), ErrorCode::InvalidInput);
        assert_eq!(refused(&[("per_page", "0")]), ErrorCode::InvalidInput);
        assert_eq!(
            refused(&[("per_page", "99999999999999")]),
            ErrorCode::InvalidInput
        );
    }

    #[test]
    fn an_unknown_type_is_refused() {
        assert_eq!(refused(&[("type", "xyz")]), ErrorCode::InvalidInput);
        assert_eq!(refused(&[("type", "BOOK")]), ErrorCode::InvalidInput);
    }

    #[test]
    fn an_unknown_branch_is_refused_invalid_branch() {
        assert_eq!(refused(&[("branch", "oita")]), ErrorCode::InvalidBranch);
    }

    #[test]
    fn available_accepts_booleans_and_a_checkbox() {
        for (v, expected) in [
            ("true", true),
            ("1", true),
            ("on", true),
            ("false", false),
            ("0", false),
        ] {
            let p = SearchParams::parse(&raw(&[("available", v)])).unwrap();
            assert_eq!(p.available_only, expected, "{v}");
        }
        assert_eq!(refused(&[("available", "yes")]), ErrorCode::InvalidInput);
    }

    #[test]
    fn an_overlong_query_is_refused() {
        let long = "あ".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(refused(&[("q", &long)]), ErrorCode::InvalidInput);
        let ok = "あ".repeat(MAX_QUERY_CHARS);
        assert!(SearchParams::parse(&raw(&[("q", &ok)])).is_ok());
    }

    #[test]
    fn the_query_string_round_trips_through_percent_encoding() {
        let p = SearchParams::parse(&raw(&[
            ("q", "吾輩 は&猫"),
            ("type", "av"),
            ("branch", "ota"),
            ("available", "on"),
        ]))
        .unwrap();
        assert_eq!(
            p.query_string(2),
            "q=%E5%90%BE%E8%BC%A9%20%E3%81%AF%26%E7%8C%AB&type=av&branch=ota&available=true&page=2"
        );
        assert_eq!(SearchParams::default().query_string(1), "");
    }

    #[test]
    fn class_decade_sort_facets_and_grouping_are_read() {
        let p = SearchParams::parse(&raw(&[
            ("ndc", "9"),
            ("decade", "1990"),
            ("sort", "reading"),
            ("facets", "true"),
            ("group_editions", "1"),
        ]))
        .unwrap();
        assert_eq!(p.ndc_class, Some(9));
        assert_eq!(p.decade, Some(1990));
        assert_eq!(p.sort, SortOrder::Reading);
        assert!(p.facets && p.group_editions);
        let request = p.to_request();
        assert_eq!(request.ndc_class, Some(9));
        assert_eq!(request.decade, Some(1990));
        assert_eq!(request.sort, "reading");
        assert!(request.facets && request.group_editions);
        // The page's own choices (facets, grouping) are not in its links; the patron's are.
        assert_eq!(p.query_string(1), "ndc=9&decade=1990&sort=reading");
        assert_eq!(
            SearchParams::parse(&raw(&[("sort", "relevance")]))
                .unwrap()
                .query_string(1),
            ""
        );
    }

    #[test]
    fn a_bad_class_decade_sort_or_flag_is_refused() {
        for (name, value) in [
            ("ndc", "10"),
            ("ndc", "x"),
            ("decade", "1995"),
            ("decade", "10000"),
            ("sort", "title"),
            ("facets", "yes"),
            ("group_editions", "2"),
        ] {
            assert_eq!(
                refused(&[(name, value)]),
                ErrorCode::InvalidInput,
                "{name}={value}"
            );
        }
    }
}
