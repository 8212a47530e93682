//! The HTML pages, in Japanese, working without JavaScript: the catalogue (top page with
//! the search box, results, a title's page with the 「予約申込」 button of rule H1) here,
//! the patron's 「Webサービス」 pages in [`account`], their loans, holds and the hold flow
//! in [`holds`], the counter's pages in [`staff`] and the desks' circulation in [`desk`],
//! the developer's outbox of the embedded run in [`dev`], and what they all share in
//! [`layout`] and [`words`]. The values they show come from the same views as the JSON API.

pub mod account;
pub mod desk;
pub mod dev;
pub mod holds;
pub mod layout;
pub mod readings;
pub mod refine;
pub mod staff;
pub mod words;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kitsuki_proto::catalog::{ItemStatus, SearchTitlesRequest, SearchTitlesResponse, TitleDetail};
use kitsuki_proto::circulation::TitleHoldability;
use kitsuki_proto::{Branch, ErrorCode};
use minijinja::context;
use serde::Serialize;

use crate::api::catalog::fetch_title;
use crate::api::staff::Staff;
use crate::error::{ApiError, Lang};
pub use crate::pages::layout::{Layout, LayoutView};
use crate::search::{RawSearchParams, SearchParams};
use crate::session;
use crate::state::AppState;
use crate::templates::{self, SITE_CSS};
use crate::views::{Availability, TitleSummaryView, material_code};

/// Short branch names for the one-line availability of a result (rule B1).
fn short_name(branch: Branch) -> &'static str {
    match branch {
        Branch::Kitsuki => "杵築",
        Branch::Yamaga => "山香",
        Branch::Ota => "大田",
    }
}

/// Rule M1's names of the material types.
pub(crate) fn material_label(kind: Option<&str>) -> &'static str {
    match kind {
        Some("book") => "図書",
        Some("magazine") => "雑誌",
        Some("av") => "視聴覚資料",
        _ => "",
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

/// `2025-02-01` → 「2025年2月1日」; anything else is shown as it came.
fn date_ja(date: &str) -> String {
    let parts: Vec<&str> = date.split('-').collect();
    match parts.as_slice() {
        [y, m, d] => match (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) {
            (Ok(y), Ok(m), Ok(d)) => format!("{y}年{m}月{d}日"),
            _ => date.to_string(),
        },
        _ => date.to_string(),
    }
}

#[derive(Serialize)]
struct OptionView {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// The search form, filled with the current search.
#[derive(Serialize)]
struct FormView {
    q: String,
    available: bool,
    types: Vec<OptionView>,
    branches: Vec<OptionView>,
}

impl FormView {
    fn new(params: &SearchParams) -> Self {
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
            due_date: (!item.due_date.is_empty()).then(|| date_ja(&item.due_date)),
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

/// An error as a page: the status and what a patron should read. As a response it also
/// travels as an extension, so that [`layout::page_context`] can render it again inside
/// the page's layout (with the header and the rule P5 banner of the signed-in patron).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    pub status: StatusCode,
    pub heading: &'static str,
    pub message: &'static str,
    /// Rule P13: how long a throttled browser should wait, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        let message = code.message_ja();
        let (heading, message) = match code {
            ErrorCode::TitleNotFound => (
                "資料が見つかりません",
                "お探しの資料は見つかりませんでした。検索し直してください。",
            ),
            ErrorCode::NotFound => (
                "ページが見つかりません",
                "お探しのページは見つかりませんでした。URLをお確かめください。",
            ),
            ErrorCode::MethodNotAllowed => (
                "この操作はできません",
                "このページではこの操作はできません。",
            ),
            ErrorCode::Unavailable => ("ただいまご利用いただけません", message),
            ErrorCode::Internal => ("システムエラー", message),
            ErrorCode::CsrfFailed => ("画面の有効期限が切れました", message),
            ErrorCode::NotLoggedIn => ("ログインしてください", message),
            ErrorCode::Forbidden => ("この操作は許可されていません", message),
            ErrorCode::TooManyAttempts => ("しばらくお待ちください", message),
            ErrorCode::TokenInvalid | ErrorCode::TokenExpired => ("リンクが無効です", message),
            _ if err.status() == StatusCode::BAD_REQUEST => ("入力内容に誤りがあります", message),
            _ => ("お手続きできません", message),
        };
        PageError {
            status: err.status(),
            heading,
            message,
            retry_after: err.retry_after(),
        }
    }
}

impl PageError {
    pub fn not_found() -> Self {
        ApiError::new(ErrorCode::NotFound).into()
    }

    /// The same error under another heading (a page that knows better what went wrong).
    pub fn headed(self, heading: &'static str) -> Self {
        PageError { heading, ..self }
    }

    pub fn render(&self, layout: &LayoutView) -> Result<String, minijinja::Error> {
        templates::render_page(
            "error.html",
            layout,
            context! { status => self.status.as_u16(), heading => self.heading, message => self.message },
        )
    }

    /// The page, or a bare one should the template fail (an error page must not fail).
    pub fn render_body(&self, layout: &LayoutView) -> String {
        self.render(layout).unwrap_or_else(|e| {
            tracing::error!(error = %e, "error page did not render");
            "<!doctype html><html lang=\"ja\"><title>エラー</title><p>エラーが発生しました。</p></html>"
                .to_string()
        })
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Html(self.render_body(&LayoutView::default()))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// A rendered page as a response, or the error page if the template failed.
pub fn html_page(
    status: StatusCode,
    name: &str,
    layout: &LayoutView,
    context: minijinja::Value,
) -> Response {
    match templates::render_page(name, layout, context) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::from(ApiError::internal("page did not render", &e)).into_response(),
    }
}

/// A form body of a page. A body that is not a form (or misses a field) is a 400 page,
/// never a 500 or axum's plain-text rejection. The `csrf` field was checked (and is
/// ignored here) by [`crate::csrf::verify`].
#[derive(Debug, Clone)]
pub struct PageForm<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for PageForm<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = PageError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, PageError> {
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(PageForm(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(ErrorCode::PayloadTooLarge).into())
            }
            Err(rejection) => Err(ApiError::invalid_input(rejection.body_text()).into()),
        }
    }
}

/// A 303 to `location`: after a form, the browser asks for the next page with GET.
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
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

fn rendered(result: Result<String, minijinja::Error>) -> Response {
    match result {
        Ok(html) => Html(html).into_response(),
        Err(e) => PageError::from(ApiError::internal("page did not render", &e)).into_response(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TITLE_ID, item, summary};
    use crate::views::BranchCount;
    use crate::views::TitleSummaryView;
    use kitsuki_proto::catalog::MaterialType;

    fn results(
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

    fn params(q: &str, page: u32) -> SearchParams {
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

    fn detail(kind: MaterialType, statuses: &[(ItemStatus, &str, &str)]) -> TitleDetail {
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

    #[test]
    fn every_page_is_phone_ready_and_japanese() {
        let pages = [
            render_results(&LayoutView::default(), &params("", 1), &results(vec![], 0)).unwrap(),
            render_title(
                &LayoutView::default(),
                &detail(MaterialType::Book, &[]),
                None,
            )
            .unwrap(),
            PageError::not_found()
                .render(&LayoutView::default())
                .unwrap(),
            templates::render_page(
                "index.html",
                &LayoutView::default(),
                context! { form => templates::to_value(&FormView::new(&SearchParams::default())) },
            )
            .unwrap(),
        ];
        for html in pages {
            assert!(html.starts_with("<!doctype html>"));
            assert!(html.contains("<html lang=\"ja\">"));
            assert!(html.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            ));
            assert!(html.contains("/static/site.css?v="));
            // The CSP forbids inline scripts and styles.
            assert!(!html.contains("<script") && !html.contains("style="));
        }
    }

    #[test]
    fn error_pages_speak_japanese() {
        let unavailable = PageError::from(ApiError::new(ErrorCode::Unavailable));
        assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            unavailable
                .render(&LayoutView::default())
                .unwrap()
                .contains("しばらくしてから")
        );
        let missing = PageError::from(ApiError::new(ErrorCode::TitleNotFound));
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(
            missing
                .render(&LayoutView::default())
                .unwrap()
                .contains("資料が見つかりません")
        );
        let bad = PageError::from(ApiError::invalid_input("page"));
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn japanese_dates() {
        assert_eq!(date_ja("2025-02-01"), "2025年2月1日");
        assert_eq!(date_ja("soon"), "soon");
    }

    fn signed_in(temporary_password: bool) -> LayoutView {
        LayoutView {
            csrf: Some("ab".repeat(32)),
            patron: Some(layout::PatronBadge {
                name: "杵築 花子".into(),
                temporary_password,
            }),
            staff: None,
        }
    }

    fn me(email: &str, pending: &str) -> minijinja::Value {
        templates::to_value(&serde_json::json!({
            "card_number": "1234567", "name": "杵築 花子",
            "email": if email.is_empty() { None } else { Some(email) },
            "email_verified": !email.is_empty(),
            "pending_email": if pending.is_empty() { None } else { Some(pending) },
            "temporary_password": true,
        }))
    }

    fn hold_row(status: &str, position: u32) -> minijinja::Value {
        templates::to_value(&hold_row_view(status, position))
    }

    fn hold_row_view(status: &str, position: u32) -> holds::HoldRow {
        holds::HoldRow::new(
            &kitsuki_proto::circulation::Hold {
                hold_id: format!("h-{status}"),
                title_id: TITLE_ID.into(),
                pickup_branch: "ota".into(),
                status: status.into(),
                queue_position: position,
                placed_at: "2026-04-01T01:00:00.000000Z".into(),
                ready_until: if status == "ready" {
                    "2026-04-09".into()
                } else {
                    String::new()
                },
                reason: if status == "rejected" {
                    "資料が破損しているため".into()
                } else {
                    String::new()
                },
                cancellable: !matches!(status, "fulfilled" | "cancelled" | "expired" | "rejected"),
                receipt_mail: true,
                ..Default::default()
            },
            &crate::circulation::TitleNames::default(),
        )
    }

    fn hold_title() -> minijinja::Value {
        templates::to_value(&TitleSummaryView::new(
            &summary("坊っちゃん", MaterialType::Book, &[("kitsuki", 1, 0)]),
            Lang::Ja,
        ))
    }

    /// マイページ's sections: a renewable loan, an overdue one, and a hold of every status.
    fn my_sections() -> minijinja::Value {
        use kitsuki_proto::circulation as pb;
        let loan = |id: &str, overdue: bool, block: Option<&str>| pb::Loan {
            loan_id: id.into(),
            barcode: format!("KT-{id}"),
            title_id: TITLE_ID.into(),
            branch: "yamaga".into(),
            due_date: "2026-04-15".into(),
            overdue,
            renewable: block.is_none(),
            renew_block: block.map(|code| pb::Block {
                code: code.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let titles = crate::circulation::TitleNames::default();
        let loans: Vec<holds::LoanRow> = [
            loan("l1", false, None),
            loan("l2", true, Some("renewal_overdue_loan")),
        ]
        .iter()
        .map(|l| holds::LoanRow::new(l, &titles))
        .collect();
        let statuses = [
            "provisional",
            "confirmed",
            "in_transit",
            "awaiting_notice",
            "ready",
            "fulfilled",
            "cancelled",
            "expired",
            "rejected",
        ];
        let holds: Vec<holds::HoldRow> = statuses
            .iter()
            .zip(1u32..)
            .map(|(s, n)| hold_row_view(s, if n <= 5 { n } else { 0 }))
            .collect();
        templates::to_value(&serde_json::json!({
            "circulation": true,
            "loans": loans,
            "holds": holds,
        }))
    }

    #[test]
    fn the_usage_sections_say_due_dates_overdue_renewal_and_hold_statuses_in_words() {
        let html = templates::render_page(
            "my.html",
            &signed_in(false),
            context! { me => me("a@example.jp", ""), notice => (), error => (), sections => my_sections() },
        )
        .unwrap();
        for words in [
            "貸出状況",
            "予約状況",
            "2026年4月15日",
            "延滞",
            "action=\"/my/loans/l1/renew\"",
            ErrorCode::RenewalOverdueLoan.message_ja(),
            "仮予約",
            "予約確定",
            "搬送中",
            "用意中（お知らせ送信前）",
            "用意できました",
            "貸出済",
            "取消",
            "期限切れ",
            "お受けできませんでした",
            "資料が破損しているため",
            "3番目",
            "大田図書室",
            "4月9日まで",
            "action=\"/my/holds/h-ready/cancel\"",
        ] {
            assert!(html.contains(words), "{words}");
        }
        // Rule L2: no 延長 button where the loan cannot be renewed; H10: no 取消 once ended.
        assert!(!html.contains("action=\"/my/loans/l2/renew\""));
        assert!(!html.contains("action=\"/my/holds/h-expired/cancel\""));
        let unavailable = templates::render_page(
            "my.html",
            &signed_in(false),
            context! { me => me("a@example.jp", ""), notice => (), error => (), sections => templates::to_value(&serde_json::json!({"circulation": true, "loans": null, "holds": null})) },
        )
        .unwrap();
        assert!(unavailable.contains("貸出状況をただいま確認できません"));
    }

    /// Every page of the accounts and the counter, rendered from hand-built values, with
    /// whether it may ask for a password (rule P12).
    fn account_pages(layout: &LayoutView) -> Vec<(&'static str, String, bool)> {
        let staff = LayoutView {
            csrf: Some("cd".repeat(32)),
            patron: None,
            staff: Some(layout::StaffBadge {
                username: "yamada".into(),
            }),
        };
        let docs = templates::to_value(&crate::api::counter::ID_DOCUMENTS);
        let form = templates::to_value(&crate::api::counter::NewPatronBody::default());
        let r = |name: &str, layout: &LayoutView, ctx: minijinja::Value| {
            templates::render_page(name, layout, ctx).unwrap_or_else(|e| panic!("{name}: {e:#}"))
        };
        vec![
            (
                "login.html",
                r(
                    "login.html",
                    layout,
                    context! { card_number => "", error => () },
                ),
                true,
            ),
            (
                "my.html",
                r(
                    "my.html",
                    layout,
                    context! { me => me("a@example.jp", ""), notice => (), error => (), sections => my_sections() },
                ),
                false,
            ),
            (
                "hold_form.html",
                r(
                    "hold_form.html",
                    layout,
                    context! {
                        title => hold_title(),
                        email => "a@example.jp",
                        branches => templates::to_value(&[
                            serde_json::json!({"code": "kitsuki", "name": "杵築市立図書館", "checked": false}),
                            serde_json::json!({"code": "ota", "name": "大田図書室", "checked": true}),
                        ]),
                        receipt_mail => "yes",
                        error => (),
                    },
                ),
                false,
            ),
            (
                "hold_review.html",
                r(
                    "hold_review.html",
                    layout,
                    context! { title => hold_title(), email => "a@example.jp", pickup_branch => "ota", pickup_name => "大田図書室", receipt_mail => true },
                ),
                false,
            ),
            (
                "hold_done.html",
                r(
                    "hold_done.html",
                    layout,
                    context! { hold => hold_row("provisional", 2) },
                ),
                false,
            ),
            (
                "hold_cancel.html",
                r(
                    "hold_cancel.html",
                    layout,
                    context! { hold => hold_row("confirmed", 1) },
                ),
                false,
            ),
            (
                "my_email.html",
                r(
                    "my_email.html",
                    layout,
                    context! { me => me("", ""), email => "", error => (), first => true },
                ),
                false,
            ),
            (
                "my_email_sent.html",
                r(
                    "my_email_sent.html",
                    layout,
                    context! { email => "a@docomo.ne.jp", carrier_notice => true, sender_address => "library@city.kitsuki.lg.jp" },
                ),
                false,
            ),
            (
                "my_password.html",
                r("my_password.html", layout, context! { error => () }),
                true,
            ),
            (
                "password_forgot.html",
                r(
                    "password_forgot.html",
                    layout,
                    context! { card_number => "", email => "", error => () },
                ),
                false,
            ),
            (
                "password_forgot_sent.html",
                r("password_forgot_sent.html", layout, context! {}),
                false,
            ),
            (
                "password_reset.html",
                r(
                    "password_reset.html",
                    layout,
                    context! { token => "t", error => () },
                ),
                true,
            ),
            (
                "email_verify.html",
                r("email_verify.html", layout, context! { token => "t" }),
                false,
            ),
            (
                "notice.html",
                r(
                    "notice.html",
                    layout,
                    context! { heading => "h", paragraphs => vec!["p"], links => templates::to_value(&[("/my", "マイページへ")]) },
                ),
                false,
            ),
            (
                "staff_login.html",
                r(
                    "staff_login.html",
                    layout,
                    context! { username => "", error => () },
                ),
                true,
            ),
            (
                "staff_menu.html",
                r(
                    "staff_menu.html",
                    &staff,
                    context! { branches => templates::to_value(&[serde_json::json!({"code": "yamaga", "name": "山香図書室"})]), error => () },
                ),
                false,
            ),
            (
                "staff_patron_new.html",
                r(
                    "staff_patron_new.html",
                    &staff,
                    context! { branch => "yamaga", branch_name => "山香図書室", form => form, id_documents => docs, error => () },
                ),
                false,
            ),
            (
                "staff_patron_created.html",
                r(
                    "staff_patron_created.html",
                    &staff,
                    context! { branch => "yamaga", card_number => "1234567", name => "杵築 花子" },
                ),
                false,
            ),
            (
                "staff_web_service.html",
                r(
                    "staff_web_service.html",
                    &staff,
                    context! { branch => "yamaga", branch_name => "山香図書室", card_number => "1234567", error => () },
                ),
                false,
            ),
            (
                "staff_desk.html",
                r(
                    "staff_desk.html",
                    &staff,
                    context! {
                        branch => "yamaga",
                        branch_name => "山香図書室",
                        pickups => templates::to_value(&[("kitsuki", "杵築市立図書館"), ("yamaga", "山香図書室")]),
                        outcome => templates::to_value(&serde_json::json!({
                            "checkin": {"routing": "transit", "words": "大田図書室へ搬送", "hold_id": "h-1", "going_home": false, "barcode": "YM-1", "title": "坊っちゃん", "returned": true},
                            "checkout": null, "hold": null, "error_form": null, "error": null,
                            "checkout_form": {"card_number": "", "barcode": ""},
                            "checkin_form": {"barcode": ""},
                            "hold_form": {"card_number": "", "title": "", "pickup_branch": ""},
                        })),
                    },
                ),
                false,
            ),
            (
                "staff_desk_loans.html",
                r(
                    "staff_desk_loans.html",
                    &staff,
                    context! { branch => "yamaga", branch_name => "山香図書室", card_number => "1234567", loans => my_sections().get_attr("loans").unwrap(), notice => (), error => () },
                ),
                false,
            ),
            (
                "staff_list.html",
                r(
                    "staff_list.html",
                    &staff,
                    context! {
                        branch => "yamaga", branch_name => "山香図書室", heading => "予約棚", intro => "…",
                        tables => templates::to_value(&[serde_json::json!({"heading": null, "columns": ["資料", "資料番号"], "rows": [["坊っちゃん", "YM-1"]], "empty": "なし"})]),
                    },
                ),
                false,
            ),
            (
                "staff_provisional.html",
                r(
                    "staff_provisional.html",
                    &staff,
                    context! {
                        branch => "yamaga", branch_name => "山香図書室", notice => (), error => (),
                        holds => templates::to_value(&[serde_json::json!({"hold_id": "h-1", "title": "坊っちゃん", "card_number": "1234567", "pickup_name": "大田図書室", "placed": "2026年4月1日 10:00"})]),
                    },
                ),
                false,
            ),
            (
                "staff_readings.html",
                r(
                    "staff_readings.html",
                    &staff,
                    context! {
                        title => templates::to_value(&serde_json::json!({
                            "title_id": TITLE_ID, "title": "坊っちゃん", "creators": "夏目漱石 著",
                            "title_reading": "ボッチャン", "author_reading": "", "source": "自動生成",
                        })),
                        form => templates::to_value(&serde_json::json!({"title_reading": "ボッチャン", "author_reading": ""})),
                        notice => (), error => (),
                    },
                ),
                false,
            ),
            (
                "staff_slip.html",
                r(
                    "staff_slip.html",
                    &staff,
                    context! { branch_name => "山香図書室", card_number => "1234567", name => "杵築 花子", temporary_password => "Kx7-pq2-Wm9" },
                ),
                false,
            ),
        ]
    }

    #[test]
    fn every_account_and_counter_page_is_phone_ready_japanese_and_script_free() {
        for (name, html, asks_password) in account_pages(&LayoutView::default()) {
            assert!(html.starts_with("<!doctype html>"), "{name}");
            assert!(html.contains("<html lang=\"ja\">"), "{name}");
            assert!(html.contains("width=device-width"), "{name}");
            assert!(
                !html.contains("<script") && !html.contains("style="),
                "{name}"
            );
            // Rule P12: only the login and password forms ask for a password.
            assert_eq!(html.contains("type=\"password\""), asks_password, "{name}");
            // Every POST form carries the CSRF field.
            let posts = html.matches("method=\"post\"").count();
            let fields = html.matches("name=\"csrf\"").count();
            assert_eq!(posts, fields, "{name}: each form has its token");
        }
    }

    #[test]
    fn the_readings_page_shows_what_is_stored_and_whether_it_was_generated() {
        let pages = account_pages(&LayoutView::default());
        let (_, html, _) = pages
            .iter()
            .find(|(n, _, _)| *n == "staff_readings.html")
            .unwrap();
        for words in [
            "<dd class=\"title-reading\">ボッチャン</dd>",
            "<dd class=\"author-reading\">—</dd>",
            "<dd class=\"reading-source\">自動生成</dd>",
            &format!("action=\"/staff/titles/{TITLE_ID}/readings\""),
            "<label for=\"title_reading\">",
            "<label for=\"author_reading\">",
        ] {
            assert!(html.contains(words), "{words}: {html}");
        }
    }

    #[test]
    fn the_title_page_links_to_the_readings_page_only_when_asked() {
        let d = detail(MaterialType::Book, &[]);
        let href = format!("/staff/titles/{TITLE_ID}/readings");
        let with = render_title_for(&LayoutView::default(), &d, None, Some(&href)).unwrap();
        assert!(with.contains(&format!("<a href=\"{href}\">読みを修正する（職員）</a>")));
        let without = render_title(&LayoutView::default(), &d, None).unwrap();
        assert!(!without.contains("/readings"));
    }

    #[test]
    fn the_hold_pages_show_the_creators() {
        let pages = account_pages(&LayoutView::default());
        for name in ["hold_form.html", "hold_review.html"] {
            let (_, html, _) = pages.iter().find(|(n, _, _)| *n == name).unwrap();
            assert!(
                html.contains("<dt>著者等</dt><dd>夏目漱石 著</dd>"),
                "{name}: {html}"
            );
        }
    }

    #[test]
    fn p5_every_page_recommends_a_password_change_while_it_is_temporary() {
        let banner = "仮パスワードのままご利用中です";
        let temporary = signed_in(true);
        let mut pages: Vec<(&str, String)> = account_pages(&temporary)
            .into_iter()
            .filter(|(name, _, _)| !name.starts_with("staff_"))
            .map(|(name, html, _)| (name, html))
            .collect();
        pages.push((
            "results",
            render_results(&temporary, &params("", 1), &results(vec![], 0)).unwrap(),
        ));
        pages.push((
            "title",
            render_title(&temporary, &detail(MaterialType::Book, &[]), None).unwrap(),
        ));
        pages.push(("error", PageError::not_found().render(&temporary).unwrap()));
        for (name, html) in &pages {
            assert!(html.contains(banner), "{name}");
            assert!(html.contains("href=\"/my/password\""), "{name}");
            assert!(
                html.contains("action=\"/logout\""),
                "{name}: the logout button"
            );
        }
        for (name, html, _) in account_pages(&signed_in(false)) {
            assert!(!html.contains(banner), "{name}");
        }
        let anonymous =
            render_results(&LayoutView::default(), &params("", 1), &results(vec![], 0)).unwrap();
        assert!(!anonymous.contains(banner));
        assert!(anonymous.contains("href=\"/login\""));
        assert!(!anonymous.contains("action=\"/logout\""));
    }

    #[test]
    fn p6_the_email_page_asks_for_an_address_first_when_none_is_registered() {
        let pages = account_pages(&signed_in(true));
        let html = &pages.iter().find(|p| p.0 == "my_email.html").unwrap().1;
        assert!(html.contains("はじめに、メールアドレスを登録してください"));
        assert!(
            html.contains("フリーメールアドレスでの登録はご遠慮ください"),
            "rule P7"
        );
    }

    #[test]
    fn p8_the_carrier_notice_names_the_sender_address() {
        let pages = account_pages(&signed_in(false));
        let html = &pages
            .iter()
            .find(|p| p.0 == "my_email_sent.html")
            .unwrap()
            .1;
        assert!(html.contains("ドメイン指定受信"));
        assert!(html.contains("「library@city.kitsuki.lg.jp」を受信できるように設定してください"));
    }

    #[test]
    fn p3_the_slip_shows_the_temporary_password_once_and_prints() {
        let pages = account_pages(&LayoutView::default());
        let (_, slip, _) = pages
            .iter()
            .find(|(n, _, _)| *n == "staff_slip.html")
            .unwrap();
        for word in [
            "Kx7-pq2-Wm9",
            "1234567",
            "杵築 花子",
            "このパスワードは再表示できません",
            "no-print",
        ] {
            assert!(slip.contains(word), "{word}");
        }
        assert!(SITE_CSS.contains("@media print"));
        let (_, login, _) = &pages[0];
        assert!(login.contains("利用者カードの番号は、ハイフンを除く7桁です"));
        assert!(login.contains("href=\"/password/forgot\""));
    }

    #[test]
    fn p11_the_forgot_page_sends_patrons_without_an_address_to_a_counter() {
        let pages = account_pages(&LayoutView::default());
        for name in ["password_forgot.html", "password_forgot_sent.html"] {
            let (_, html, _) = pages.iter().find(|(n, _, _)| *n == name).unwrap();
            assert!(html.contains("カウンター"), "{name}");
        }
    }

    #[test]
    fn the_staff_header_replaces_the_patron_one() {
        let pages = account_pages(&LayoutView::default());
        let (_, menu, _) = pages
            .iter()
            .find(|(n, _, _)| *n == "staff_menu.html")
            .unwrap();
        assert!(menu.contains("職員: yamada"));
        assert!(menu.contains("action=\"/staff/logout\""));
        assert!(menu.contains("action=\"/staff/yamaga/web-service\""));
    }
}
