//! The developer's pages of the embedded one-process run (issue 3): 「送信メール（開発用）」
//! lists what the notification service sent (its `ListDeliveries`), and each mail it wrote
//! as a file in the outbox folder opens decoded, its links clickable, so that a developer
//! can follow a verification or reset link without a mail server.
//!
//! They exist only when the state turns them on and has a notification client
//! ([`AppState::serves_dev_pages`]); the router does not even route them otherwise, so a
//! deployed gateway answers 404. They are not part of the API (no `openapi.json` entry).

use std::io::ErrorKind;
use std::path::Path as FsPath;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use kitsuki_platform::clock::{LIBRARY_OFFSET, parse_instant};
use kitsuki_proto::notification::{Delivery, ListDeliveriesRequest};
use minijinja::context;
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::dev::eml;
use crate::state::AppState;
use crate::web::error::ApiError;
use crate::web::route_table::{Routes, Served};
use crate::web::templates;
use crate::web::{Layout, LayoutView, PageError, rendered};

/// How many of the newest deliveries the list shows.
pub const LIST_LIMIT: u32 = 100;

/// The largest mail file the page reads: the project's mails are a few kilobytes, and a
/// page should not load whatever else someone left in the folder.
const MAX_MAIL_BYTES: u64 = 1 << 20;

/// The delivery log's status in words.
fn status_label(status: &str) -> &str {
    match status {
        "sent" => "送信済み",
        "pending" => "送信待ち",
        "failed" => "送信失敗",
        "no_address" => "宛先なし",
        other => other,
    }
}

/// `2026-04-03T06:30:00.000000Z` → 「2026年4月3日 15:30:00」 (library time); an empty or
/// unreadable instant as a dash or as it came.
fn time_ja(instant: &str) -> String {
    if instant.is_empty() {
        return "—".to_string();
    }
    match parse_instant(instant) {
        Some(t) => {
            let t = t.to_offset(LIBRARY_OFFSET);
            format!(
                "{}年{}月{}日 {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        None => instant.to_string(),
    }
}

/// Whether `id` has the shape of the delivery ids the service makes (a UUID, lowercase,
/// hyphenated). Only such an id is ever joined to the outbox folder, which leaves no room
/// for `..`, a slash or any other way out of it.
pub fn is_delivery_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// The mail file of a delivery id (of checked shape).
fn mail_path(dir: &FsPath, delivery_id: &str) -> std::path::PathBuf {
    dir.join(format!("{delivery_id}.eml"))
}

#[derive(Debug, Serialize)]
struct DeliveryRow {
    time: String,
    to: String,
    subject: String,
    status: String,
    attempts: u32,
    /// The mail's page, when the mail was sent and its file is in the outbox folder.
    href: Option<String>,
}

/// Whether the delivery's mail can be shown: sent, written as a file (not through SMTP).
async fn has_file(state: &AppState, delivery: &Delivery) -> bool {
    match state.outbox_dir() {
        Some(dir) if delivery.status == "sent" && is_delivery_id(&delivery.delivery_id) => {
            tokio::fs::try_exists(mail_path(dir, &delivery.delivery_id))
                .await
                .unwrap_or(false)
        }
        _ => false,
    }
}

/// `GET /dev/outbox`: the newest deliveries, newest first.
#[tracing::instrument(skip_all)]
pub async fn outbox(State(state): State<AppState>, layout: Layout) -> Result<Response, PageError> {
    let Some(mut client) = state.notification() else {
        return Err(PageError::not_found());
    };
    let deliveries = client
        .list_deliveries(state.rpc(ListDeliveriesRequest { limit: LIST_LIMIT }))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner()
        .deliveries;
    let mut rows = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let href = has_file(&state, &d)
            .await
            .then(|| format!("/dev/outbox/{}", d.delivery_id));
        rows.push(DeliveryRow {
            time: time_ja(&d.sent_at),
            status: status_label(&d.status).to_string(),
            to: d.to,
            subject: d.subject,
            attempts: d.attempts,
            href,
        });
    }
    Ok(rendered(render_outbox(
        &layout.view(),
        &rows,
        state.outbox_dir(),
    )))
}

fn render_outbox(
    layout: &LayoutView,
    rows: &[DeliveryRow],
    outbox_dir: Option<&FsPath>,
) -> Result<String, minijinja::Error> {
    templates::render_page(
        "dev_outbox.html",
        layout,
        context! {
            deliveries => templates::to_value(&rows),
            limit => LIST_LIMIT,
            outbox_dir => outbox_dir.map(|d| d.display().to_string()),
        },
    )
}

/// A piece of a mail's text: plain, or a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub text: String,
    pub href: Option<String>,
}

/// Cuts `text` into plain pieces and `http(s)://` links (the links of the mails). A link
/// runs to the first character that cannot be in a URL — white space, a Japanese
/// character, `<`, `>`, `"` — less trailing punctuation. Nothing else becomes a link (no
/// `javascript:`), and the template escapes every piece.
pub fn segments(text: &str) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    while let Some(start) = next_link(rest) {
        let tail = &rest[start..];
        let mut end = tail.find(|c: char| !is_url_char(c)).unwrap_or(tail.len());
        end = tail[..end]
            .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\''])
            .len();
        let link = &tail[..end];
        let scheme = if link.starts_with("https://") { 8 } else { 7 };
        if link.len() <= scheme {
            // A bare scheme is text; look on after it.
            plain.push_str(&rest[..start + scheme]);
            rest = &rest[start + scheme..];
            continue;
        }
        plain.push_str(&rest[..start]);
        if !plain.is_empty() {
            out.push(Segment {
                text: std::mem::take(&mut plain),
                href: None,
            });
        }
        out.push(Segment {
            text: link.to_string(),
            href: Some(link.to_string()),
        });
        rest = &tail[end..];
    }
    plain.push_str(rest);
    if !plain.is_empty() {
        out.push(Segment {
            text: plain,
            href: None,
        });
    }
    out
}

fn next_link(s: &str) -> Option<usize> {
    [s.find("http://"), s.find("https://")]
        .into_iter()
        .flatten()
        .min()
}

fn is_url_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '`' | '{' | '}' | '|' | '\\' | '^')
}

#[derive(Debug, Serialize)]
struct HeaderRow {
    label: &'static str,
    value: String,
}

/// Reads a mail file; `None` when there is no such file, an error when it is larger than
/// [`MAX_MAIL_BYTES`].
async fn read_mail(path: &FsPath) -> Result<Option<Vec<u8>>, PageError> {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ApiError::internal("opening a mail file", &e).into()),
    };
    let mut bytes = Vec::new();
    file.take(MAX_MAIL_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| PageError::from(ApiError::internal("reading a mail file", &e)))?;
    if bytes.len() as u64 > MAX_MAIL_BYTES {
        return Err(ApiError::internal("a mail file is too large", &path.display()).into());
    }
    Ok(Some(bytes))
}

/// `GET /dev/outbox/{delivery_id}`: one mail of the outbox folder, decoded.
#[tracing::instrument(skip_all)]
pub async fn mail(
    State(state): State<AppState>,
    layout: Layout,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let id = match path {
        Ok(Path(id)) if is_delivery_id(&id) => id,
        _ => return Err(PageError::not_found()),
    };
    let Some(dir) = state.outbox_dir() else {
        return Err(PageError::not_found());
    };
    let Some(raw) = read_mail(&mail_path(dir, &id)).await? else {
        return Err(PageError::not_found());
    };
    Ok(rendered(render_mail(&layout.view(), &id, &raw)))
}

/// The page of one mail file: its headers and body decoded, the links of the body
/// clickable, and the file as written beneath.
fn render_mail(
    layout: &LayoutView,
    delivery_id: &str,
    raw: &[u8],
) -> Result<String, minijinja::Error> {
    let parsed = eml::parse(raw);
    let headers: Vec<HeaderRow> = [
        ("件名", "Subject"),
        ("差出人", "From"),
        ("宛先", "To"),
        ("日付", "Date"),
    ]
    .into_iter()
    .filter_map(|(label, name)| {
        parsed.header(name).map(|v| HeaderRow {
            label,
            value: v.to_string(),
        })
    })
    .collect();
    templates::render_page(
        "dev_mail.html",
        layout,
        context! {
            delivery_id => delivery_id,
            subject => parsed.header("Subject").unwrap_or_default(),
            headers => templates::to_value(&headers),
            body => templates::to_value(&segments(&parsed.body)),
            body_decoded => parsed.body_decoded,
            raw => String::from_utf8_lossy(raw).replace("\r\n", "\n"),
        },
    )
}

/// The developer's outbox pages, routed only in the embedded run on loopback (`AppState::serves_dev_pages`).
pub(crate) fn routes() -> Routes {
    Routes::new()
        .served_when(Served::DevPages)
        .get("/dev/outbox", outbox)
        .get("/dev/outbox/{delivery_id}", mail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANNER: &str = "開発用の画面です。運用環境では表示されません。";

    fn assert_plain_japanese_page(html: &str) {
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<html lang=\"ja\">"));
        assert!(html.contains("width=device-width"));
        assert!(!html.contains("<script") && !html.contains("style="));
        assert!(html.contains(BANNER));
    }

    #[test]
    fn the_outbox_list_shows_each_delivery_and_links_only_mail_files() {
        let row = |subject: &str, status: &str, href: Option<&str>| DeliveryRow {
            time: time_ja("2026-04-03T06:30:05Z"),
            to: "hanako@example.jp".into(),
            subject: subject.into(),
            status: status_label(status).into(),
            attempts: 2,
            href: href.map(str::to_string),
        };
        let rows = [
            row("<script>x</script>", "sent", Some("/dev/outbox/a")),
            row("メールアドレス確認のお願い", "no_address", None),
        ];
        let html = render_outbox(
            &LayoutView::default(),
            &rows,
            Some(FsPath::new("/data/outbox")),
        )
        .unwrap();
        assert_plain_japanese_page(&html);
        assert!(html.contains("<h1>送信メール（開発用）</h1>"));
        assert!(html.contains("<a href=\"/dev/outbox/a\">&lt;script&gt;x&lt;/script&gt;</a>"));
        assert!(html.contains("<td data-label=\"件名\">メールアドレス確認のお願い</td>"));
        for text in [
            "2026年4月3日 15:30:05",
            "送信済み",
            "宛先なし",
            "/data/outbox",
        ] {
            assert!(html.contains(text), "{text}");
        }
        let empty = render_outbox(&LayoutView::default(), &[], None).unwrap();
        assert_plain_japanese_page(&empty);
        assert!(empty.contains("送信したメールはまだありません。"));
    }

    #[test]
    fn a_mail_page_escapes_what_the_mail_says() {
        let raw = "Subject: <b>hi</b>\r\nFrom: a@example.jp\r\n\r\n\
<script>alert(1)</script> http://x.jp/?a=1&b=2\"onclick=\"x\r\n";
        let html = render_mail(
            &LayoutView::default(),
            "0192f1c2-7a5e-7c3b-9d1e-0123456789ab",
            raw.as_bytes(),
        )
        .unwrap();
        assert_plain_japanese_page(&html);
        assert!(
            !html.contains("<script>alert") && !html.contains("<b>hi"),
            "{html}"
        );
        assert!(html.contains("<h1>&lt;b&gt;hi&lt;/b&gt;</h1>"));
        assert!(html.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt; <a href=\"http://x.jp/?a=1&amp;b=2\">http://x.jp/?a=1&amp;b=2</a>&quot;onclick=&quot;x"
        ), "{html}");
        assert!(html.contains("0192f1c2-7a5e-7c3b-9d1e-0123456789ab.eml"));
    }

    #[test]
    fn only_the_shape_of_the_services_ids_is_a_delivery_id() {
        assert!(is_delivery_id("0192f1c2-7a5e-7c3b-9d1e-0123456789ab"));
        for bad in [
            "",
            "0192F1C2-7A5E-7C3B-9D1E-0123456789AB",
            "0192f1c27a5e7c3b9d1e0123456789ab",
            "{0192f1c2-7a5e-7c3b-9d1e-0123456789ab}",
            "urn:uuid:0192f1c2-7a5e-7c3b-9d1e-0123456789ab",
            "0192f1c2-7a5e-7c3b-9d1e-0123456789ab.eml",
            "../../../../../../../etc/passwd",
            "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
            "0192f1c2-7a5e-7c3b-9d1e-0123456789a/",
            "0192f1c2-7a5e-7c3b-9d1e-012345678..a",
            "0192f1c2-7a5e-7c3b-9d1e-0123456789ag",
            "0192f1c2-7a5e-7c3b-9d1e-0123456789ab0",
            "0192f1c2-7a5e-7c3b-9d1e-01234567８９ab",
        ] {
            assert!(!is_delivery_id(bad), "{bad}");
        }
    }

    #[test]
    fn statuses_read_in_japanese() {
        assert_eq!(status_label("sent"), "送信済み");
        assert_eq!(status_label("pending"), "送信待ち");
        assert_eq!(status_label("failed"), "送信失敗");
        assert_eq!(status_label("no_address"), "宛先なし");
        assert_eq!(status_label("later"), "later");
    }

    #[test]
    fn sending_times_read_in_library_time() {
        assert_eq!(
            time_ja("2026-04-03T06:30:05.000000Z"),
            "2026年4月3日 15:30:05"
        );
        assert_eq!(time_ja("2026-12-31T15:00:00Z"), "2027年1月1日 00:00:00");
        assert_eq!(time_ja(""), "—");
        assert_eq!(time_ja("yesterday"), "yesterday");
    }

    fn link(s: &str) -> Segment {
        Segment {
            text: s.into(),
            href: Some(s.into()),
        }
    }

    fn plain(s: &str) -> Segment {
        Segment {
            text: s.into(),
            href: None,
        }
    }

    #[test]
    fn the_links_of_a_mail_become_links_and_nothing_else_does() {
        let url = "http://localhost:8080/email/verify?token=Ab-9_x%2F1&a=b";
        assert_eq!(
            segments(&format!("下のリンクを開いてください。\n{url}\n\n以上")),
            vec![
                plain("下のリンクを開いてください。\n"),
                link(url),
                plain("\n\n以上")
            ]
        );
        // A URL ends at Japanese text, brackets and trailing punctuation.
        assert_eq!(
            segments("「https://example.jp/a」をご覧ください。https://example.jp/b."),
            vec![
                plain("「"),
                link("https://example.jp/a"),
                plain("」をご覧ください。"),
                link("https://example.jp/b"),
                plain("."),
            ]
        );
        assert_eq!(
            segments("javascript:alert(1) http:// <http://x.jp/\">"),
            vec![
                plain("javascript:alert(1) http:// <"),
                link("http://x.jp/"),
                plain("\">"),
            ]
        );
        assert_eq!(segments(""), vec![]);
        assert_eq!(segments("文"), vec![plain("文")]);
    }
}
