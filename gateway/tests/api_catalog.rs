//! The catalogue over HTTP against the real catalog service: administration makes the
//! records, the search API and pages find them (API.md "Catalog", "Catalogue
//! administration"; rule H1's `holdable` as the catalogue's data makes it).

mod common;

use common::{TestApp, assert_security_headers};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Creates a title through the admin API and answers its id.
async fn title(app: &TestApp, admin: &str, body: Value) -> String {
    let reply = app
        .call("POST", "/api/v1/admin/titles", Some(admin), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let id = reply.json()["title_id"].as_str().unwrap().to_string();
    assert_eq!(reply.location(), format!("/api/v1/titles/{id}"));
    id
}

async fn item(app: &TestApp, admin: &str, title_id: &str, barcode: &str, branch: &str) {
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/items",
            Some(admin),
            Some(json!({"title_id": title_id, "barcode": barcode, "branch": branch, "call_number": "913.6/ナ"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

/// Four titles: a book at two branches, a book at one, a magazine, a book without copies.
struct Shelf {
    botchan: String,
    kokoro: String,
    magazine: String,
    neko: String,
}

async fn shelf(app: &TestApp) -> Shelf {
    let admin = app.admin_token().await;
    let botchan = title(
        app,
        &admin,
        json!({"title": "坊っちゃん", "title_reading": "ボッチャン", "author": "夏目漱石", "publisher": "新潮社", "year": 1906, "type": "book"}),
    )
    .await;
    item(app, &admin, &botchan, "kt-0001", "kitsuki").await;
    item(app, &admin, &botchan, "YM-0001", "yamaga").await;
    let kokoro = title(
        app,
        &admin,
        json!({"title": "こころ", "author": "夏目漱石", "year": 1914, "type": "book"}),
    )
    .await;
    item(app, &admin, &kokoro, "YM-0002", "yamaga").await;
    let magazine = title(
        app,
        &admin,
        json!({"title": "月刊おおいた", "type": "magazine"}),
    )
    .await;
    item(app, &admin, &magazine, "OT-0001", "ota").await;
    let neko = title(
        app,
        &admin,
        json!({"title": "吾輩は猫である", "author": "夏目漱石", "type": "book"}),
    )
    .await;
    Shelf {
        botchan,
        kokoro,
        magazine,
        neko,
    }
}

fn titles_of(body: &Value) -> Vec<String> {
    let mut titles: Vec<String> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    titles
}

#[tokio::test]
async fn search_answers_summaries_with_availability_per_branch() {
    let app = TestApp::spawn().await;
    let shelf = shelf(&app).await;
    let reply = app
        .call(
            "GET",
            "/api/v1/titles?q=%E5%9D%8A%E3%81%A3%E3%81%A1%E3%82%83%E3%82%93",
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_security_headers(&reply, "search");
    let body = reply.json();
    assert_eq!(
        (body["page"].clone(), body["per_page"].clone()),
        (json!(1), json!(20))
    );
    let hit = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["title_id"] == shelf.botchan.as_str())
        .expect("坊っちゃん is found");
    assert_eq!(hit["author"], "夏目漱石");
    assert_eq!(hit["creators"], "夏目漱石");
    assert_eq!(hit["type"], "book");
    assert_eq!(
        hit["availability"],
        json!({"kitsuki": {"total": 1, "available": 1}, "yamaga": {"total": 1, "available": 1}, "ota": {"total": 0, "available": 0}})
    );
    // Rule H1: copies on the shelf, so no web hold.
    assert_eq!(hit["holdable"], false);
    assert_eq!(hit["hold_block"]["code"], "hold_available_copy");
}

#[tokio::test]
async fn search_filters_by_type_branch_and_availability_and_pages() {
    let app = TestApp::spawn().await;
    shelf(&app).await;
    let body = app.call("GET", "/api/v1/titles", None, None).await.json();
    assert_eq!(body["total"], 4, "no query browses everything");

    let body = app
        .call("GET", "/api/v1/titles?type=magazine", None, None)
        .await
        .json();
    assert_eq!(titles_of(&body), vec!["月刊おおいた"]);

    let body = app
        .call("GET", "/api/v1/titles?branch=yamaga", None, None)
        .await
        .json();
    assert_eq!(titles_of(&body), vec!["こころ", "坊っちゃん"]);

    let body = app
        .call("GET", "/api/v1/titles?available=true&type=book", None, None)
        .await
        .json();
    assert_eq!(
        titles_of(&body),
        vec!["こころ", "坊っちゃん"],
        "a title without copies is not available"
    );

    let body = app
        .call("GET", "/api/v1/titles?per_page=3&page=2", None, None)
        .await
        .json();
    assert_eq!(
        (body["total"].clone(), body["page"].clone()),
        (json!(4), json!(2))
    );
    assert_eq!(body["hits"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_title_has_its_items_and_h1_says_why_it_cannot_be_held() {
    let app = TestApp::spawn().await;
    let shelf = shelf(&app).await;
    let body = app
        .call(
            "GET",
            &format!("/api/v1/titles/{}", shelf.kokoro),
            None,
            None,
        )
        .await
        .json();
    assert_eq!(body["title_id"], shelf.kokoro.as_str());
    assert_eq!(
        body["items"],
        json!([{"barcode": "YM-0002", "branch": "yamaga", "call_number": "913.6/ナ", "status": "available", "due_date": null}])
    );
    assert_eq!(body["hold_block"]["code"], "hold_available_copy");

    let body = app
        .call("GET", &format!("/api/v1/titles/{}", shelf.neko), None, None)
        .await
        .json();
    assert_eq!(body["items"], json!([]));
    assert_eq!(body["hold_block"]["code"], "hold_not_held_here");

    let reply = app
        .request("GET", &format!("/api/v1/titles/{}", shelf.magazine), |r| {
            r.header("accept-language", "en")
        })
        .await;
    assert_eq!(
        reply.json()["hold_block"],
        json!({"code": "hold_material_type", "message": "Only books can be held on the web."})
    );
}

#[tokio::test]
async fn an_unknown_title_is_404_title_not_found() {
    let app = TestApp::spawn().await;
    let reply = app
        .call(
            "GET",
            "/api/v1/titles/0192f1c2-0000-7c3b-9d1e-0123456789ab",
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "title_not_found");
    let reply = app
        .request("GET", "/titles/0192f1c2-0000-7c3b-9d1e-0123456789ab", |r| r)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.text.contains("資料が見つかりません"));
}

#[tokio::test]
async fn the_pages_show_results_and_copies_in_japanese() {
    let app = TestApp::spawn().await;
    let shelf = shelf(&app).await;
    let reply = app
        .request("GET", "/search?q=%E5%A4%8F%E7%9B%AE&per_page=2", |r| r)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.text.contains("3件"), "{}", reply.text);
    assert!(reply.text.contains("次へ"));
    assert!(
        reply.text.contains("href=\"/login\""),
        "the header offers the login"
    );

    let reply = app
        .request("GET", &format!("/titles/{}", shelf.botchan), |r| r)
        .await;
    assert!(reply.text.contains("<h1>坊っちゃん</h1>"));
    assert!(reply.text.contains("山香図書室") && reply.text.contains("貸出可"));
    assert!(reply.text.contains("杵築 1/1 ・ 山香 1/1 ・ 大田 —"));
    assert!(
        !reply.text.contains("予約申込"),
        "rule H1: a copy is on the shelf"
    );
    // No form with a token on a page without a POST form: no CSRF cookie either.
    assert_eq!(reply.set_cookie("kitsuki_csrf"), None);
}

/// Issue 10: a title created with its statement of responsibility shows its creators with
/// their roles, as Japanese writes them, in the API beside the heading and on the pages.
#[tokio::test]
async fn the_creators_are_shown_with_their_roles_from_the_statement() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let anne = title(
        &app,
        &admin,
        json!({"title": "赤毛のアン", "author": "Montgomery, Lucy Maud ; 掛川, 恭子",
               "responsibility": "モンゴメリ [著] ; 掛川 恭子 訳", "type": "book"}),
    )
    .await;
    let matsushita = title(
        &app,
        &admin,
        json!({"title": "江戸料理読本", "author": "松下, 幸子", "type": "book"}),
    )
    .await;
    const ANNE: &str = "モンゴメリ 著；掛川恭子 訳";

    let detail = app
        .call("GET", &format!("/api/v1/titles/{anne}"), None, None)
        .await
        .json();
    assert_eq!(detail["creators"], ANNE);
    assert_eq!(detail["author"], "Montgomery, Lucy Maud ; 掛川, 恭子");
    // No statement: the heading as a name is written, with no role made up.
    let detail = app
        .call("GET", &format!("/api/v1/titles/{matsushita}"), None, None)
        .await
        .json();
    assert_eq!(detail["creators"], "松下幸子");

    let results = app
        .request("GET", "/search?q=%E8%B5%A4%E6%AF%9B", |r| r)
        .await;
    assert_eq!(results.status, StatusCode::OK, "{}", results.text);
    assert!(
        results.text.contains(&format!("<span>{ANNE}</span>")),
        "{}",
        results.text
    );
    assert!(!results.text.contains("Montgomery"), "{}", results.text);
    let page = app.request("GET", &format!("/titles/{anne}"), |r| r).await;
    assert!(
        page.text
            .contains(&format!("<dt>著者等</dt><dd>{ANNE}</dd>")),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn administration_refuses_bad_items_and_duplicate_barcodes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = title(&app, &admin, json!({"title": "坊っちゃん", "type": "book"})).await;
    let reply = app
        .call(
            "POST",
            "/api/v1/admin/items",
            Some(&admin),
            Some(json!({"title_id": id, "barcode": "kt-0100", "branch": "yamaga"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let body = reply.json();
    assert_eq!(
        (body["barcode"].clone(), body["status"].clone()),
        (json!("KT-0100"), json!("available"))
    );

    for (body, status, code) in [
        (
            json!({"title_id": id, "barcode": "KT-0100", "branch": "ota"}),
            StatusCode::CONFLICT,
            "barcode_taken",
        ),
        (
            json!({"title_id": id, "barcode": "X", "branch": "oita"}),
            StatusCode::BAD_REQUEST,
            "invalid_branch",
        ),
        (
            json!({"title_id": id, "barcode": "X 1", "branch": "ota"}),
            StatusCode::BAD_REQUEST,
            "invalid_barcode",
        ),
        (
            json!({"title": "x", "type": "dvd"}),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
    ] {
        let path = if body.get("barcode").is_some() {
            "/api/v1/admin/items"
        } else {
            "/api/v1/admin/titles"
        };
        let reply = app
            .call("POST", path, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert_eq!(reply.code(), code, "{body}");
    }
}

/// Staff correct a title's reading (issue 10): stored as given, searched at once; a
/// reading that is not kana is 400 invalid_input, an unknown title 404, a clerk 403, no session 401.
#[tokio::test]
async fn admin_corrects_a_reading_and_search_finds_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = title(
        &app,
        &admin,
        json!({"title": "十三夜", "title_reading": "ジュウサンヨル", "author": "樋口一葉", "type": "book"}),
    )
    .await;
    let path = format!("/api/v1/admin/titles/{id}/readings");
    let reply = app
        .call(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"title_reading": "じゅうさんや", "author_reading": "ひぐちいちよう"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let v = reply.json();
    assert_eq!(
        (
            v["title_reading"].as_str(),
            v["author_reading"].as_str(),
            v["reading_source"].as_str()
        ),
        (Some("じゅうさんや"), Some("ひぐちいちよう"), Some("given"))
    );
    let shown = app
        .call("GET", &format!("/api/v1/titles/{id}"), None, None)
        .await;
    assert_eq!(shown.json()["title_reading"], "じゅうさんや");
    // Romaji writes ん before y as n' (jusanya would read じゅさにゃ).
    for q in [
        "じゅうさんや",
        "jusan'ya",
        "ひぐちいちよう",
        "higuchi ichiyo",
    ] {
        let found = app
            .call("GET", &format!("/api/v1/titles?q={q}"), None, None)
            .await;
        assert_eq!(found.json()["total"], 1, "{q}: {}", found.text);
    }
    let old = app
        .call("GET", "/api/v1/titles?q=じゅうさんよる", None, None)
        .await;
    assert_eq!(old.json()["total"], 0, "the old reading is gone");

    let reply = app
        .call(
            "PUT",
            &path,
            Some(&admin),
            Some(json!({"title_reading": "十三夜"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.code(), "invalid_input");
    let unknown = format!("/api/v1/admin/titles/{}/readings", uuid::Uuid::now_v7());
    for p in [unknown.as_str(), "/api/v1/admin/titles/not-a-uuid/readings"] {
        let reply = app
            .call(
                "PUT",
                p,
                Some(&admin),
                Some(json!({"title_reading": "かな"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{p}: {}", reply.text);
        assert_eq!(reply.code(), "title_not_found");
    }
    let clerk = app.staff_of("clerk", &["yamaga"]).await;
    let reply = app
        .call(
            "PUT",
            &path,
            Some(&clerk),
            Some(json!({"title_reading": "かな"})),
        )
        .await;
    // Rule S3: catalogue administration is the admin role's.
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["error"]["rule"], "S3");
    let reply = app
        .call("PUT", &path, None, Some(json!({"title_reading": "かな"})))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
