//! The catalogue's pages: the top page with the search box, the results (facets, sorts,
//! もしかして), a title's page with its copies, other editions and the 「予約申込」 button of
//! rule H1; and the stylesheet.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kitsuki_proto::Branch;
use kitsuki_proto::catalog::{ItemStatus, SearchTitlesRequest, SearchTitlesResponse, TitleDetail};
use kitsuki_proto::circulation::TitleHoldability;
use minijinja::context;
use serde::Serialize;

use crate::catalog::api::fetch_title;
use crate::catalog::refine;
use crate::catalog::search::{RawSearchParams, SearchParams};
use crate::catalog::views::{Availability, TitleSummaryView, material_code, material_label};
use crate::staff::readings;
use crate::staff::session::Staff;
use crate::state::AppState;
use crate::web::error::{ApiError, Lang};
use crate::web::layout::{Layout, LayoutView};
use crate::web::route_table::Routes;
use crate::web::session;
use crate::web::templates::{self, SITE_CSS};
use crate::web::{PageError, html_page, rendered, words};

/// Short branch names for the one-line availability of a result (rule B1).
fn short_name(branch: Branch) -> &'static str {
    match branch {
        Branch::Kitsuki => "杵築",
        Branch::Yamaga => "山香",
        Branch::Ota => "大田",
    }
}

fn status_label(status: ItemStatus) -> &'static str {
    match status {
        ItemStatus::Available => "貸出可",
        ItemStatus::OnLoan => "貸出中",
        ItemStatus::InTransit => "搬送中",
        ItemStatus::OnHoldShelf => "予約棚",
        ItemStatus::Unspecified => "確認中",
    }
}

/// 「杵築 1/2 ・ 山香 0/1 ・ 大田 —」: available/total per branch, a dash where the branch
/// holds no copy.
pub fn availability_line(availability: &Availability) -> String {
    Branch::ALL
        .iter()
        .map(|b| {
            let count = availability.get(*b);
            if count.total == 0 {
                format!("{} —", short_name(*b))
            } else {
                format!("{} {}/{}", short_name(*b), count.available, count.total)
            }
        })
        .collect::<Vec<_>>()
        .join(" ・ ")
}

#[derive(Serialize)]
struct OptionView {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// The search form, filled with the current search.
#[derive(Serialize)]
pub(crate) struct FormView {
    q: String,
    available: bool,
    types: Vec<OptionView>,
    branches: Vec<OptionView>,
}

impl FormView {
    pub(crate) fn new(params: &SearchParams) -> Self {
        let current_type = params.material.and_then(material_code).unwrap_or("");
        let types = [
            ("", "すべて"),
            ("book", "図書"),
            ("magazine", "雑誌"),
            ("av", "視聴覚資料"),
        ]
        .into_iter()
        .map(|(value, label)| OptionView {
            value,
            label,
            selected: value == current_type,
        })
        .collect();
        let current_branch = params.branch.map(Branch::code).unwrap_or("");
        let branches = std::iter::once(("", "すべての館"))
            .chain(Branch::ALL.iter().map(|b| (b.code(), b.name_ja())))
            .map(|(value, label)| OptionView {
                value,
                label,
                selected: value == current_branch,
            })
            .collect();
        FormView {
            q: params.q.clone(),
            available: params.available_only,
            types,
            branches,
        }
    }
}

#[derive(Serialize)]
struct HitView {
    title_id: String,
    title: String,
    creators: Option<String>,
    publisher: Option<String>,
    year: Option<i32>,
    material: &'static str,
    availability: String,
    holds_waiting: u32,
    /// Rule H1: 「予約申込」 only on a title a web hold may be placed on.
    hold_href: Option<String>,
    /// With editions grouped: how many other editions the title page lists.
    other_editions: u32,
}

fn search_href(params: &SearchParams, page: u32) -> String {
    let query = params.query_string(page);
    if query.is_empty() {
        "/search".to_string()
    } else {
        format!("/search?{query}")
    }
}

/// Renders the results page of `params` from the catalogue's answer.
pub fn render_results(
    layout: &LayoutView,
    params: &SearchParams,
    response: &SearchTitlesResponse,
) -> Result<String, minijinja::Error> {
    let hits: Vec<HitView> = response
        .hits
        .iter()
        .map(|hit| {
            let view = TitleSummaryView::new(hit, Lang::Ja);
            HitView {
                hold_href: view
                    .holdable
                    .then(|| format!("/titles/{}/hold", view.title_id)),
                availability: availability_line(&view.availability),
                material: material_label(view.material),
                title_id: view.title_id,
                title: view.title,
                creators: view.creators,
                publisher: view.publisher,
                year: view.year,
                holds_waiting: view.holds_waiting,
                other_editions: view.editions.unwrap_or(1).saturating_sub(1),
            }
        })
        .collect();
    let per_page = u64::from(params.per_page.max(1));
    let pages = response.total.div_ceil(per_page).max(1);
    let page = params.page;
    let prev_href = (page > 1).then(|| search_href(params, page - 1));
    let next_href =
        (u64::from(page) * per_page < response.total).then(|| search_href(params, page + 1));
    templates::render_page(
        "results.html",
        layout,
        context! {
            form => templates::to_value(&FormView::new(params)),
            q => params.q.clone(),
            total => response.total,
            page => page,
            pages => pages,
            hits => templates::to_value(&hits),
            prev_href => prev_href,
            next_href => next_href,
            sorts => templates::to_value(&refine::sort_links(params)),
            facets => templates::to_value(&response.facets.as_ref().map(|f| refine::facet_groups(params, f)).unwrap_or_default()),
            suggestions => templates::to_value(&refine::suggestion_links(&response.suggestions)),
        },
    )
}

#[derive(Serialize)]
struct ItemRow {
    branch: String,
    call_number: String,
    status: &'static str,
    due_date: Option<String>,
}

/// Another edition of the work, on a title's page, with its availability.
#[derive(Serialize)]
struct EditionRow {
    title_id: String,
    title: String,
    publisher: Option<String>,
    year: Option<i32>,
    availability: String,
}

/// Renders a title's page. The 「予約申込」 button appears only when rule H1 allows a web
/// hold; otherwise the page says why. `live` is circulation's own answer for the title
/// when it could give one (see [`title`]).
pub fn render_title(
    layout: &LayoutView,
    detail: &TitleDetail,
    live: Option<&TitleHoldability>,
) -> Result<String, minijinja::Error> {
    render_title_for(layout, detail, live, None)
}

/// [`render_title`] with the link to the staff page of the title's readings, for staff
/// with the admin role (`readings::link_for`).
pub fn render_title_for(
    layout: &LayoutView,
    detail: &TitleDetail,
    live: Option<&TitleHoldability>,
    readings_href: Option<&str>,
) -> Result<String, minijinja::Error> {
    let summary = detail.title.clone().unwrap_or_default();
    let mut view = TitleSummaryView::new(&summary, Lang::Ja);
    if let Some(live) = live {
        view = view.with_live(live, Lang::Ja);
    }
    let items: Vec<ItemRow> = detail
        .items
        .iter()
        .map(|item| ItemRow {
            branch: Branch::parse(&item.branch)
                .map(|b| b.name_ja().to_string())
                .unwrap_or_else(|_| item.branch.clone()),
            call_number: item.call_number.clone(),
            status: status_label(item.status()),
            due_date: (!item.due_date.is_empty()).then(|| words::date(&item.due_date)),
        })
        .collect();
    let hold_href = view
        .holdable
        .then(|| format!("/titles/{}/hold", view.title_id));
    let other_editions: Vec<EditionRow> = detail
        .other_editions
        .iter()
        .map(|s| {
            let e = TitleSummaryView::new(s, Lang::Ja);
            EditionRow {
                availability: availability_line(&e.availability),
                title_id: e.title_id,
                title: e.title,
                publisher: e.publisher,
                year: e.year,
            }
        })
        .collect();
    templates::render_page(
        "title.html",
        layout,
        context! {
            title => templates::to_value(&view),
            material => material_label(view.material),
            availability => availability_line(&view.availability),
            items => templates::to_value(&items),
            hold_href => hold_href,
            hold_block => templates::to_value(&view.hold_block),
            readings_href => readings_href,
            other_editions => templates::to_value(&other_editions),
        },
    )
}

/// `GET /`: the search box.
pub async fn index(layout: Layout) -> Response {
    let form = FormView::new(&SearchParams::default());
    html_page(
        StatusCode::OK,
        "index.html",
        &layout.view(),
        context! { form => templates::to_value(&form) },
    )
}

/// `GET /search?q=…`: results with pagination.
#[tracing::instrument(skip_all)]
pub async fn search(
    State(state): State<AppState>,
    layout: Layout,
    query: Result<Query<RawSearchParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let bad_search = |e: ApiError| PageError::from(e).headed("検索条件に誤りがあります");
    let Query(raw) = query.map_err(|r| bad_search(ApiError::invalid_input(r.body_text())))?;
    let params = SearchParams::parse(&raw).map_err(bad_search)?;
    // The page always counts facets and groups editions (issue 10); the API asks for them.
    let request = SearchTitlesRequest {
        facets: true,
        group_editions: true,
        ..params.to_request()
    };
    let response = state
        .catalog()
        .search_titles(state.rpc(request))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(rendered(render_results(&layout.view(), &params, &response)))
}

/// `GET /titles/{title_id}`: the title, its copies and (rule H1) the hold button.
///
/// The button follows circulation's own answer (`GetTitleHoldability`) when it can give
/// one: it reads the very rows a hold is checked against, where the summary is the
/// catalogue's copy of them, a moment behind. So a patron is not offered a hold that the
/// 「送信」 at the end of the flow would refuse. Listings keep the summary's answer (one
/// search, no call per hit); where circulation cannot say, so does this page.
#[tracing::instrument(skip_all)]
pub async fn title(
    State(state): State<AppState>,
    layout: Layout,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let detail = fetch_title(&state, path).await?;
    let Some(summary) = &detail.title else {
        return Err(ApiError::internal(
            "catalog answered a title without its summary",
            &"TitleDetail.title missing",
        )
        .into());
    };
    let live = crate::circulation::live_holdability(&state, &summary.title_id).await;
    // Staff signed in on this browser: admin staff get the link to correct the readings.
    // A session that cannot be checked only loses the link, never the page.
    let staff = match session::cookie(&headers, session::STAFF_COOKIE) {
        Some(token) => Staff::check(&state, session::Secret::new(token)).await.ok(),
        None => None,
    };
    let readings_href = readings::link_for(staff.as_ref(), &summary.title_id);
    Ok(rendered(render_title_for(
        &layout.view(),
        &detail,
        live.as_ref(),
        readings_href.as_deref(),
    )))
}

/// `GET /static/site.css`. Its URL carries a fingerprint of its content, so it can be
/// cached for a year.
pub async fn site_css() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        SITE_CSS,
    )
}

/// The catalogue pages and the stylesheet.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/", index)
        .get("/search", search)
        .get("/titles/{title_id}", title)
        .get("/static/site.css", site_css)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::views::BranchCount;
    use crate::test_support::{TITLE_ID, item, summary};
    use kitsuki_proto::ErrorCode;
    use kitsuki_proto::catalog::MaterialType;

    pub(crate) fn results(
        hits: Vec<kitsuki_proto::catalog::TitleSummary>,
        total: u64,
    ) -> SearchTitlesResponse {
        SearchTitlesResponse {
            total,
            page: 1,
            per_page: 20,
            hits,
            ..SearchTitlesResponse::default()
        }
    }

    pub(crate) fn params(q: &str, page: u32) -> SearchParams {
        SearchParams {
            q: q.into(),
            page,
            ..SearchParams::default()
        }
    }

    #[test]
    fn availability_reads_per_branch_with_a_dash_for_none() {
        let a = Availability {
            kitsuki: BranchCount {
                total: 2,
                available: 1,
            },
            yamaga: BranchCount {
                total: 1,
                available: 0,
            },
            ota: BranchCount::default(),
        };
        assert_eq!(availability_line(&a), "杵築 1/2 ・ 山香 0/1 ・ 大田 —");
    }

    #[test]
    fn a_results_page_shows_titles_counts_and_branch_availability() {
        let hits = vec![summary(
            "坊っちゃん",
            MaterialType::Book,
            &[("kitsuki", 2, 1), ("yamaga", 1, 0)],
        )];
        let html = render_results(
            &LayoutView::default(),
            &params("漱石", 1),
            &results(hits, 1),
        )
        .unwrap();
        assert!(html.contains("<html lang=\"ja\">"));
        assert!(html.contains("杵築市立図書館 蔵書検索"));
        for name in ["杵築市立図書館", "山香図書室", "大田図書室"] {
            assert!(html.contains(name), "{name}");
        }
        assert!(html.contains("1件"));
        assert!(html.contains("坊っちゃん"));
        // The creators as the catalogue displays them, not the heading.
        assert!(html.contains("<span>夏目漱石 著</span>"), "{html}");
        assert!(!html.contains("夏目, 漱石"));
        assert!(html.contains("新潮社"));
        assert!(html.contains("1950"));
        assert!(html.contains("杵築 1/2 ・ 山香 0/1 ・ 大田 —"));
        assert!(html.contains(&format!("href=\"/titles/{TITLE_ID}\"")));
        assert!(
            html.contains("value=\"漱石\""),
            "the query stays in the box"
        );
        assert!(html.contains("貸出可能のみ"));
        assert!(
            !html.contains("前へ") && !html.contains("次へ"),
            "one page only"
        );
    }

    /// Issue 10: names as people write them, with their roles, on both pages.
    #[test]
    fn the_results_and_title_pages_show_the_creators_with_their_roles() {
        let mut anne = summary("赤毛のアン", MaterialType::Book, &[("kitsuki", 1, 0)]);
        anne.author = "Montgomery, Lucy Maud ; 掛川, 恭子".into();
        anne.responsibility = "L.M.モンゴメリ 著 ; 掛川恭子 訳".into();
        anne.creators = "L.M.モンゴメリ 著；掛川恭子 訳".into();
        let html = render_results(
            &LayoutView::default(),
            &params("アン", 1),
            &results(vec![anne.clone()], 1),
        )
        .unwrap();
        assert!(
            html.contains("<span>L.M.モンゴメリ 著；掛川恭子 訳</span>"),
            "{html}"
        );
        assert!(!html.contains("Montgomery"), "{html}");
        let html = render_title(
            &LayoutView::default(),
            &TitleDetail {
                title: Some(anne),
                items: vec![],
                other_editions: vec![],
            },
            None,
        )
        .unwrap();
        assert!(
            html.contains("<dt>著者等</dt><dd>L.M.モンゴメリ 著；掛川恭子 訳</dd>"),
            "{html}"
        );
        assert!(!html.contains("Montgomery"), "{html}");
    }

    #[test]
    fn a_results_page_escapes_a_script_in_a_title() {
        let hits = vec![summary(
            "<script>alert(1)</script>",
            MaterialType::Book,
            &[("ota", 1, 1)],
        )];
        let html = render_results(
            &LayoutView::default(),
            &params("<script>", 1),
            &results(hits, 1),
        )
        .unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn a_results_page_links_previous_and_next_pages_keeping_the_query() {
        let hits = vec![summary(
            "吾輩は猫である",
            MaterialType::Book,
            &[("kitsuki", 1, 1)],
        )];
        let html =
            render_results(&LayoutView::default(), &params("猫", 2), &results(hits, 45)).unwrap();
        assert!(html.contains("45件"));
        assert!(html.contains("2 / 3"));
        assert!(html.contains("前へ") && html.contains("次へ"));
        assert!(
            html.contains("href=\"/search?q=%E7%8C%AB\""),
            "page 1 has no page parameter"
        );
        assert!(html.contains("href=\"/search?q=%E7%8C%AB&amp;page=3\""));
    }

    #[test]
    fn an_empty_results_page_says_nothing_was_found() {
        let html = render_results(
            &LayoutView::default(),
            &params("存在しない本", 1),
            &results(vec![], 0),
        )
        .unwrap();
        assert!(html.contains("0件"));
        assert!(html.contains("見つかりませんでした"));
    }

    pub(crate) fn detail(kind: MaterialType, statuses: &[(ItemStatus, &str, &str)]) -> TitleDetail {
        let mut rows: Vec<(&str, u32, u32)> = Vec::new();
        for (status, branch, _) in statuses {
            let available = u32::from(*status == ItemStatus::Available);
            match rows.iter_mut().find(|r| r.0 == *branch) {
                Some(row) => {
                    row.1 += 1;
                    row.2 += available;
                }
                None => rows.push((branch, 1, available)),
            }
        }
        TitleDetail {
            title: Some(summary("こころ", kind, &rows)),
            items: statuses
                .iter()
                .enumerate()
                .map(|(i, (status, branch, due))| item(&format!("KT-{i}"), branch, *status, due))
                .collect(),
            other_editions: Vec::new(),
        }
    }

    #[test]
    fn a_title_page_shows_copies_with_branch_names_and_status_words() {
        let d = detail(
            MaterialType::Book,
            &[
                (ItemStatus::OnLoan, "kitsuki", "2025-02-01"),
                (ItemStatus::InTransit, "yamaga", ""),
                (ItemStatus::OnHoldShelf, "ota", ""),
            ],
        );
        let html = render_title(&LayoutView::default(), &d, None).unwrap();
        assert!(html.contains("<h1>こころ</h1>"), "{html}");
        for word in [
            "杵築市立図書館",
            "山香図書室",
            "大田図書室",
            "貸出中",
            "搬送中",
            "予約棚",
            "2025年2月1日",
            "913.6/ナ",
            "<dt>著者等</dt><dd>夏目漱石 著</dd>",
            "図書",
        ] {
            assert!(html.contains(word), "{word}");
        }
        let d = detail(
            MaterialType::Book,
            &[(ItemStatus::Available, "kitsuki", "")],
        );
        assert!(
            render_title(&LayoutView::default(), &d, None)
                .unwrap()
                .contains("貸出可")
        );
    }

    #[test]
    fn h1_the_hold_button_appears_when_every_copy_of_a_book_is_out() {
        let d = detail(
            MaterialType::Book,
            &[
                (ItemStatus::OnLoan, "kitsuki", "2025-02-01"),
                (ItemStatus::InTransit, "ota", ""),
            ],
        );
        let html = render_title(&LayoutView::default(), &d, None).unwrap();
        assert!(html.contains("予約申込"));
        assert!(html.contains(&format!("href=\"/titles/{TITLE_ID}/hold\"")));
    }

    #[test]
    fn h1_no_hold_button_when_a_copy_is_on_the_shelf() {
        let d = detail(
            MaterialType::Book,
            &[
                (ItemStatus::OnLoan, "kitsuki", "2025-02-01"),
                (ItemStatus::Available, "ota", ""),
            ],
        );
        let html = render_title(&LayoutView::default(), &d, None).unwrap();
        assert!(!html.contains("予約申込"));
        assert!(html.contains(ErrorCode::HoldAvailableCopy.message_ja()));
    }

    #[test]
    fn h1_no_hold_button_for_magazines_and_av() {
        for kind in [MaterialType::Magazine, MaterialType::Av] {
            let d = detail(kind, &[(ItemStatus::OnLoan, "kitsuki", "2025-02-01")]);
            let html = render_title(&LayoutView::default(), &d, None).unwrap();
            assert!(!html.contains("予約申込"), "{kind:?}");
            assert!(html.contains(ErrorCode::HoldMaterialType.message_ja()));
        }
    }

    #[test]
    fn h1_no_hold_button_for_a_title_without_copies() {
        let html = render_title(
            &LayoutView::default(),
            &detail(MaterialType::Book, &[]),
            None,
        )
        .unwrap();
        assert!(!html.contains("予約申込"));
        assert!(html.contains(ErrorCode::HoldNotHeldHere.message_ja()));
        assert!(html.contains("所蔵している資料はありません"));
    }

    #[test]
    fn a_title_page_escapes_a_script_in_a_title() {
        let mut d = detail(MaterialType::Book, &[(ItemStatus::OnLoan, "kitsuki", "")]);
        if let Some(t) = d.title.as_mut() {
            t.title = "<script>alert('x')</script>".into();
            t.creators = "\"><img src=x onerror=alert(1)>".into();
        }
        let html = render_title(&LayoutView::default(), &d, None).unwrap();
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
