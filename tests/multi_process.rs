//! The distributed shape: `kitsuki catalog`, `kitsuki patron` and `kitsuki gateway` as
//! separate processes over PostgreSQL (a database per service) and NATS JetStream (a
//! subject namespace per test). Titles and items created through the JSON API are found
//! by Japanese queries through HTTP, and the catalog's events reach the stream.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{start, temp_dir, wait_ready};
use kitsuki_platform::bus::nats::NatsBus;
use kitsuki_platform::bus::{ConsumerSpec, EventBus};
use kitsuki_platform::testing;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_create_and_find_titles_over_grpc_and_nats() {
    let dir = temp_dir("multi");
    let prefix = testing::unique_prefix();
    let nats = testing::nats_url();
    let catalog_db = testing::fresh_pg_database().await.unwrap();
    let patron_db = testing::fresh_pg_database().await.unwrap();
    let admin_pw = common::random_password();
    let data = dir.to_string_lossy().to_string();

    let bus_env = [
        ("KITSUKI_NATS_URL", nats.as_str()),
        ("KITSUKI_BUS_PREFIX", prefix.as_str()),
        ("KITSUKI_DATA_DIR", data.as_str()),
    ];
    let mut catalog_env = bus_env.to_vec();
    catalog_env.push(("KITSUKI_DATABASE_URL", &catalog_db));
    let catalog = start(
        "catalog",
        &["catalog", "--listen", "127.0.0.1:0"],
        &catalog_env,
        &dir,
    );
    let mut patron_env = bus_env.to_vec();
    patron_env.push(("KITSUKI_DATABASE_URL", &patron_db));
    patron_env.push(("KITSUKI_ADMIN_PASSWORD", &admin_pw));
    let patron = start(
        "patron",
        &["patron", "--listen", "127.0.0.1:0"],
        &patron_env,
        &dir,
    );
    let gateway = start(
        "gateway",
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--catalog-url",
            &catalog.url,
            "--patron-url",
            &patron.url,
        ],
        &[],
        &dir,
    );
    let http = reqwest::Client::new();
    for p in [&catalog, &patron, &gateway] {
        wait_ready(&http, &p.url).await;
    }
    let base = &gateway.url;

    // Staff session with the bootstrap admin (API.md).
    let r = http
        .post(format!("{base}/api/v1/staff/session"))
        .json(&json!({"username": "admin", "password": admin_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = http
        .post(format!("{base}/api/v1/staff/session"))
        .json(&json!({"username": "admin", "password": "nope-nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"]["code"],
        "bad_credentials"
    );

    let mut ids = Vec::new();
    for (title, reading, author) in [
        ("吾輩は猫である", "わがはいはねこである", "夏目漱石"),
        ("雪国", "ゆきぐに", "川端康成"),
        ("東京都の地理", "", "地理学会"),
    ] {
        let r = http
            .post(format!("{base}/api/v1/admin/titles"))
            .bearer_auth(&token)
            .json(&json!({"title": title, "title_reading": reading, "author": author, "type": "book", "isbn": "978-4-10-101013-7"}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        ids.push(body["title_id"].as_str().unwrap().to_string());
    }
    for (i, (id, branch)) in ids.iter().zip(["kitsuki", "yamaga", "ota"]).enumerate() {
        let r = http
            .post(format!("{base}/api/v1/admin/items"))
            .bearer_auth(&token)
            .json(&json!({"title_id": id, "barcode": format!("mp-{i}"), "branch": branch, "call_number": "913.6"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // Without a session the admin paths are refused.
    let r = http
        .post(format!("{base}/api/v1/admin/titles"))
        .json(&json!({"title": "x", "type": "book"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let search = |q: &str| {
        let http = http.clone();
        let url = format!("{base}/api/v1/titles");
        let q = q.to_string();
        async move {
            let r = http
                .get(url)
                .query(&[("q", q.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let found = search("ゆきぐに").await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["hits"][0]["title"], "雪国");
    assert_eq!(found["hits"][0]["availability"]["yamaga"]["available"], 1);
    let found = search("ワガハイ").await;
    assert_eq!(found["hits"][0]["title"], "吾輩は猫である");
    let found = search("地理").await;
    assert_eq!(found["total"], 1);
    let found = search("漱石").await;
    assert_eq!(found["total"], 1);

    let detail: Value = http
        .get(format!("{base}/api/v1/titles/{}", ids[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["items"][0]["barcode"], "MP-0");
    assert_eq!(detail["items"][0]["status"], "available");

    // The catalog's relay published its events (3 titles, 3 items) to JetStream.
    let bus = Arc::new(NatsBus::connect(&nats, &prefix).await.unwrap());
    let mut sub = bus
        .subscribe(&ConsumerSpec::new("test-reader", "catalog.>"))
        .await
        .unwrap();
    let mut subjects = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while subjects.len() < 6 && std::time::Instant::now() < deadline {
        if let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(2), sub.next()).await {
            subjects.push(d.event.subject.clone());
            d.ack().await.unwrap();
        }
    }
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.starts_with("catalog.title.created"))
            .count(),
        3
    );
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.starts_with("catalog.item.created"))
            .count(),
        3
    );
    let _ = bus.delete_stream().await;
    drop(gateway);
    drop(patron);
    drop(catalog);
}
