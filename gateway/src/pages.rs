//! The HTML pages for patrons, in Japanese: the top page with the search box, search
//! results, a title's page with its copies and the 「予約申込」 button (rule H1), the
//! placeholder login page and friendly error pages. They work without JavaScript; the
//! values they show come from the same views as the JSON API.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kitsuki_proto::catalog::{ItemStatus, SearchTitlesResponse, TitleDetail};
use kitsuki_proto::{Branch, ErrorCode};
use minijinja::context;
use serde::Serialize;

use crate::api::catalog::fetch_title;
use crate::error::{ApiError, Lang};
use crate::search::{RawSearchParams, SearchParams};
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
fn material_label(kind: Option<&str>) -> &'static str {
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
    author: Option<String>,
    publisher: Option<String>,
    year: Option<i32>,
    material: &'static str,
    availability: String,
    holds_waiting: u32,
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
    params: &SearchParams,
    response: &SearchTitlesResponse,
) -> Result<String, minijinja::Error> {
    let hits: Vec<HitView> = response
        .hits
        .iter()
        .map(|hit| {
            let view = TitleSummaryView::new(hit, Lang::Ja);
            HitView {
                availability: availability_line(&view.availability),
                material: material_label(view.material),
                title_id: view.title_id,
                title: view.title,
                author: view.author,
                publisher: view.publisher,
                year: view.year,
                holds_waiting: view.holds_waiting,
            }
        })
        .collect();
    let per_page = u64::from(params.per_page.max(1));
    let pages = response.total.div_ceil(per_page).max(1);
    let page = params.page;
    let prev_href = (page > 1).then(|| search_href(params, page - 1));
    let next_href =
        (u64::from(page) * per_page < response.total).then(|| search_href(params, page + 1));
    templates::render(
        "results.html",
        context! {
            form => templates::to_value(&FormView::new(params)),
            q => params.q.clone(),
            total => response.total,
            page => page,
            pages => pages,
            hits => templates::to_value(&hits),
            prev_href => prev_href,
            next_href => next_href,
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

/// Renders a title's page. The 「予約申込」 button appears only when rule H1 allows a web
/// hold; otherwise the page says why.
pub fn render_title(detail: &TitleDetail) -> Result<String, minijinja::Error> {
    let summary = detail.title.clone().unwrap_or_default();
    let view = TitleSummaryView::new(&summary, Lang::Ja);
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
    templates::render(
        "title.html",
        context! {
            title => templates::to_value(&view),
            material => material_label(view.material),
            availability => availability_line(&view.availability),
            items => templates::to_value(&items),
            hold_href => hold_href,
            hold_block => templates::to_value(&view.hold_block),
        },
    )
}

/// An error as a page: the status and what a patron should read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    pub status: StatusCode,
    pub heading: &'static str,
    pub message: &'static str,
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        let (heading, message) = match code {
            ErrorCode::TitleNotFound => (
                "資料が見つかりません",
                "お探しの資料は見つかりませんでした。検索し直してください。",
            ),
            ErrorCode::NotFound => (
                "ページが見つかりません",
                "お探しのページは見つかりませんでした。URLをお確かめください。",
            ),
            ErrorCode::Unavailable => ("ただいまご利用いただけません", code.message_ja()),
            ErrorCode::Internal => ("システムエラー", code.message_ja()),
            _ => ("検索条件に誤りがあります", code.message_ja()),
        };
        PageError {
            status: err.status(),
            heading,
            message,
        }
    }
}

impl PageError {
    pub fn not_found() -> Self {
        ApiError::new(ErrorCode::NotFound).into()
    }

    pub fn render(&self) -> Result<String, minijinja::Error> {
        templates::render(
            "error.html",
            context! { status => self.status.as_u16(), heading => self.heading, message => self.message },
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "error page did not render");
                (
                    self.status,
                    Html("<!doctype html><html lang=\"ja\"><title>エラー</title><p>エラーが発生しました。</p></html>".to_string()),
                )
                    .into_response()
            }
        }
    }
}

fn page(rendered: Result<String, minijinja::Error>) -> Result<Html<String>, PageError> {
    rendered
        .map(Html)
        .map_err(|e| ApiError::internal("page did not render", &e).into())
}

/// `GET /`: the search box.
pub async fn index() -> Result<Html<String>, PageError> {
    let form = FormView::new(&SearchParams::default());
    page(templates::render(
        "index.html",
        context! { form => templates::to_value(&form) },
    ))
}

/// `GET /search?q=…`: results with pagination.
#[tracing::instrument(skip_all)]
pub async fn search(
    State(state): State<AppState>,
    query: Result<Query<RawSearchParams>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(raw) = query.map_err(|r| ApiError::invalid_input(r.body_text()))?;
    let params = SearchParams::parse(&raw)?;
    let response = state
        .catalog()
        .search_titles(state.rpc(params.to_request()))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    page(render_results(&params, &response))
}

/// `GET /titles/{title_id}`: the title, its copies and (rule H1) the hold button.
#[tracing::instrument(skip_all)]
pub async fn title(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Html<String>, PageError> {
    let detail = fetch_title(&state, path).await?;
    if detail.title.is_none() {
        return Err(ApiError::internal(
            "catalog answered a title without its summary",
            &"TitleDetail.title missing",
        )
        .into());
    }
    page(render_title(&detail))
}

/// `GET /titles/{title_id}/hold`: placing a hold needs a patron login (rule H3), which a
/// later issue builds; until then the button leads to the login page.
pub async fn hold() -> Redirect {
    Redirect::to("/login")
}

/// `GET /login`: placeholder until patron login is served.
pub async fn login() -> Result<Html<String>, PageError> {
    page(templates::render("login.html", context! {}))
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
        let html = render_results(&params("漱石", 1), &results(hits, 1)).unwrap();
        assert!(html.contains("<html lang=\"ja\">"));
        assert!(html.contains("杵築市立図書館 蔵書検索"));
        for name in ["杵築市立図書館", "山香図書室", "大田図書室"] {
            assert!(html.contains(name), "{name}");
        }
        assert!(html.contains("1件"));
        assert!(html.contains("坊っちゃん"));
        assert!(html.contains("夏目漱石"));
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

    #[test]
    fn a_results_page_escapes_a_script_in_a_title() {
        let hits = vec![summary(
            "<script>alert(1)</script>",
            MaterialType::Book,
            &[("ota", 1, 1)],
        )];
        let html = render_results(&params("<script>", 1), &results(hits, 1)).unwrap();
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
        let html = render_results(&params("猫", 2), &results(hits, 45)).unwrap();
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
        let html = render_results(&params("存在しない本", 1), &results(vec![], 0)).unwrap();
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
        let html = render_title(&d).unwrap();
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
            "夏目漱石",
            "図書",
        ] {
            assert!(html.contains(word), "{word}");
        }
        let d = detail(
            MaterialType::Book,
            &[(ItemStatus::Available, "kitsuki", "")],
        );
        assert!(render_title(&d).unwrap().contains("貸出可"));
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
        let html = render_title(&d).unwrap();
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
        let html = render_title(&d).unwrap();
        assert!(!html.contains("予約申込"));
        assert!(html.contains(ErrorCode::HoldAvailableCopy.message_ja()));
    }

    #[test]
    fn h1_no_hold_button_for_magazines_and_av() {
        for kind in [MaterialType::Magazine, MaterialType::Av] {
            let d = detail(kind, &[(ItemStatus::OnLoan, "kitsuki", "2025-02-01")]);
            let html = render_title(&d).unwrap();
            assert!(!html.contains("予約申込"), "{kind:?}");
            assert!(html.contains(ErrorCode::HoldMaterialType.message_ja()));
        }
    }

    #[test]
    fn h1_no_hold_button_for_a_title_without_copies() {
        let html = render_title(&detail(MaterialType::Book, &[])).unwrap();
        assert!(!html.contains("予約申込"));
        assert!(html.contains(ErrorCode::HoldNotHeldHere.message_ja()));
        assert!(html.contains("所蔵している資料はありません"));
    }

    #[test]
    fn a_title_page_escapes_a_script_in_a_title() {
        let mut d = detail(MaterialType::Book, &[(ItemStatus::OnLoan, "kitsuki", "")]);
        if let Some(t) = d.title.as_mut() {
            t.title = "<script>alert('x')</script>".into();
            t.author = "\"><img src=x onerror=alert(1)>".into();
        }
        let html = render_title(&d).unwrap();
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn every_page_is_phone_ready_and_japanese() {
        let pages = [
            render_results(&params("", 1), &results(vec![], 0)).unwrap(),
            render_title(&detail(MaterialType::Book, &[])).unwrap(),
            PageError::not_found().render().unwrap(),
            templates::render(
                "index.html",
                context! { form => templates::to_value(&FormView::new(&SearchParams::default())) },
            )
            .unwrap(),
            templates::render("login.html", context! {}).unwrap(),
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
        assert!(unavailable.render().unwrap().contains("しばらくしてから"));
        let missing = PageError::from(ApiError::new(ErrorCode::TitleNotFound));
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.render().unwrap().contains("資料が見つかりません"));
        let bad = PageError::from(ApiError::invalid_input("page"));
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn japanese_dates() {
        assert_eq!(date_ja("2025-02-01"), "2025年2月1日");
        assert_eq!(date_ja("soon"), "soon");
    }
}
