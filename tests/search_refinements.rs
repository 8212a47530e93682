//! Issue 10's refinements through the one-process system, as a client of the JSON API and
//! a browser of the results page see them: the seed catalogue searched with facets, by
//! the newest and in 五十音順; a query without hits answered with suggestions by reading;
//! editions of one work, registered by staff with their NDC class, grouped in results, each
//! filtered by its class and decade, and listed on each other's title page.

mod common;

use common::system::Api;
use common::{random_password, start, temp_dir, wait_ready};
use serde_json::{Value, json};

async fn search(api: &Api, query: &str) -> Value {
    let (status, v) = api
        .call("GET", &format!("/api/v1/titles?{query}"), None, None)
        .await;
    assert_eq!(status, 200, "{query}: {v}");
    v
}

/// A page as a browser gets it.
async fn html(api: &Api, path: &str) -> String {
    let r = api
        .http
        .get(format!("{}{path}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

fn hits(v: &Value) -> &Vec<Value> {
    v["hits"].as_array().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facets_sorts_suggestions_and_editions_through_the_api_and_the_page() {
    let dir = temp_dir("refinements");
    let data = dir.join("data");
    let data_s = data.to_string_lossy().to_string();
    let admin_pw = random_password();
    let app = start(
        "all-in-one",
        &["--listen", "127.0.0.1:0", "--data-dir", &data_s],
        &[("KITSUKI_ADMIN_PASSWORD", admin_pw.as_str())],
        &dir,
    );
    let api = Api {
        http: reqwest::Client::new(),
        base: app.url.clone(),
    };
    wait_ready(&api.http, &app.url).await;

    // Facets over the whole seed catalogue: the types add up to the total.
    let all = search(&api, "facets=true&per_page=5").await;
    let total = all["total"].as_u64().unwrap();
    assert!(total > 500, "{total}");
    let types: u64 = all["facets"]["material_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(types, total);
    let decades = all["facets"]["decades"].as_array().unwrap();
    assert!(decades.len() >= 3, "{decades:?}");
    // Without facets=true there are none, and suggestions are empty.
    let plain = search(&api, "per_page=5").await;
    assert!(plain.get("facets").is_none());
    assert_eq!(plain["suggestions"], json!([]));

    // Newest first: publication years never rise down the page.
    let newest = search(&api, "sort=newest&per_page=100").await;
    let years: Vec<i64> = hits(&newest)
        .iter()
        .map(|h| h["year"].as_i64().unwrap_or(i64::MIN))
        .collect();
    assert!(years.windows(2).all(|w| w[0] >= w[1]), "{years:?}");
    // 五十音順: a different order from the newest, every title still there.
    let gojuon = search(&api, "sort=reading&per_page=100").await;
    assert_eq!(gojuon["total"], newest["total"]);
    assert_ne!(hits(&gojuon)[0]["title_id"], hits(&newest)[0]["title_id"]);
    let (status, v) = api
        .call("GET", "/api/v1/titles?sort=title", None, None)
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );

    // One kana wrong finds nothing, and suggests the title it meant.
    let typo = search(&api, "q=にしきへがかたる").await;
    assert_eq!(typo["total"], 0);
    let suggestions: Vec<&str> = typo["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        suggestions.iter().any(|s| s.contains("錦絵が語る江戸の食")),
        "{suggestions:?}"
    );
    let page = html(&api, "/search?q=にしきへがかたる").await;
    assert!(page.contains("もしかして:"), "{page}");
    assert!(page.contains("錦絵が語る江戸の食"));

    // Three editions of one work and one of another, registered by staff.
    let (_, v) = api
        .call(
            "POST",
            "/api/v1/staff/session",
            None,
            Some(json!({"username": "admin", "password": admin_pw})),
        )
        .await;
    let staff = v["token"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for (year, ndc) in [(1958, "933.7"), (2008, "933.7"), (1990, "933")] {
        let (status, v) = api
            .call(
                "POST",
                "/api/v1/admin/titles",
                Some(&staff),
                Some(
                    json!({"title": "アンの青春", "author": "モンゴメリ", "year": year,
                    "ndc": ndc, "type": "book"}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        ids.push(v["title_id"].as_str().unwrap().to_string());
    }
    let (status, v) = api
        .call(
            "POST",
            "/api/v1/admin/titles",
            Some(&staff),
            Some(json!({"title": "アンの青春", "author": "別の 訳者", "type": "book", "ndc": "9.1.1"})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_input")),
        "{v}"
    );

    let grouped = search(&api, "q=アンの青春&group_editions=true&facets=true").await;
    assert_eq!(grouped["total"], 1, "{grouped}");
    let best = &hits(&grouped)[0];
    assert_eq!(best["editions"], 3);
    assert_eq!(
        best["title_id"], ids[1],
        "the newest edition stands for the work"
    );
    let classes = &grouped["facets"]["ndc_classes"];
    assert_eq!(classes[0]["value"], "9");
    assert_eq!(classes[0]["name"], "文学");
    assert_eq!(classes[0]["count"], 3);
    let ungrouped = search(&api, "q=アンの青春").await;
    assert_eq!(ungrouped["total"], 3);
    assert!(hits(&ungrouped)[0].get("editions").is_none());
    let nineties = search(&api, "q=アンの青春&decade=1990&ndc=9").await;
    assert_eq!(nineties["total"], 1);
    assert_eq!(hits(&nineties)[0]["title_id"], ids[2]);

    let (status, detail) = api
        .call("GET", &format!("/api/v1/titles/{}", ids[0]), None, None)
        .await;
    assert_eq!(status, 200);
    let others: Vec<&str> = detail["other_editions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["title_id"].as_str())
        .collect();
    assert_eq!(others, [ids[1].as_str(), ids[2].as_str()], "newest first");

    // The page: one hit standing for three editions, facets and sorts as links.
    let page = html(&api, "/search?q=アンの青春").await;
    assert!(page.contains("ほかの版 2件"), "{page}");
    assert!(page.contains("9 文学"));
    assert!(page.contains("五十音順"));
    let title_page = html(&api, &format!("/titles/{}", ids[0])).await;
    assert!(title_page.contains("ほかの版"));
    assert!(title_page.contains(&format!("/titles/{}", ids[1])));
    let _ = app;
}
