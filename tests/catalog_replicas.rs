//! Two `kitsuki catalog` processes behind one catalogue, as the prod overlay runs them
//! (two replicas over one database, each with its own search index in its own folder), each
//! with a gateway in front: a title created through one replica is found through the other,
//! a copy added through the second shows in the first's availability, and a replica that
//! stops on SIGTERM exits cleanly while the other goes on. The in-process detail (events,
//! rebuild, consumers) is tested in services/catalog/tests/replicas.rs; this checks the
//! role's wiring of it.

mod common;

use std::time::Duration;

use common::{Proc, eventually, start, temp_dir, wait_ready};
use kitsuki_platform::testing;
use serde_json::{Value, json};

async fn search(http: &reqwest::Client, gateway: &Proc, q: &str) -> Value {
    let r = http
        .get(format!("{}/api/v1/titles", gateway.url))
        .query(&[("q", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn post(
    http: &reqwest::Client,
    gateway: &Proc,
    token: &str,
    path: &str,
    body: Value,
) -> Value {
    let r = http
        .post(format!("{}{path}", gateway.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_catalog_processes_serve_one_catalogue() {
    let dir = temp_dir("catalog-replicas");
    let prefix = testing::unique_prefix();
    let nats = testing::nats_url();
    let catalog_db = testing::fresh_pg_database().await.unwrap();
    let patron_db = testing::fresh_pg_database().await.unwrap();
    let admin_pw = common::random_password();

    let replica = |name: &str| {
        // Each replica its own data folder (its index), as each pod its own emptyDir.
        let data = dir.join(name).to_string_lossy().to_string();
        start(
            name,
            &["catalog", "--listen", "127.0.0.1:0"],
            &[
                ("KITSUKI_NATS_URL", nats.as_str()),
                ("KITSUKI_BUS_PREFIX", prefix.as_str()),
                ("KITSUKI_DATA_DIR", data.as_str()),
                ("KITSUKI_DATABASE_URL", catalog_db.as_str()),
            ],
            &dir,
        )
    };
    let a = replica("catalog-a");
    let mut b = replica("catalog-b");
    let patron = start(
        "patron",
        &["patron", "--listen", "127.0.0.1:0"],
        &[
            ("KITSUKI_NATS_URL", nats.as_str()),
            ("KITSUKI_BUS_PREFIX", prefix.as_str()),
            ("KITSUKI_DATABASE_URL", patron_db.as_str()),
            ("KITSUKI_ADMIN_PASSWORD", admin_pw.as_str()),
        ],
        &dir,
    );
    let gateway = |catalog: &Proc| {
        start(
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
        )
    };
    let gateway_a = gateway(&a);
    let gateway_b = gateway(&b);
    let http = reqwest::Client::new();
    for p in [&a, &b, &patron, &gateway_a, &gateway_b] {
        wait_ready(&http, &p.url).await;
    }
    let r = http
        .post(format!("{}/api/v1/staff/session", gateway_a.url))
        .json(&json!({"username": "admin", "password": admin_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Created through replica A: B's search finds it once B's consumer has passed it on.
    let title = post(
        &http,
        &gateway_a,
        &token,
        "/api/v1/admin/titles",
        json!({"title": "杵築城下町の歴史", "author": "杵築 花子", "type": "book"}),
    )
    .await;
    let title_id = title["title_id"].as_str().unwrap().to_string();
    let found = eventually(
        "B finds the title made through A",
        Duration::from_secs(30),
        || {
            let (http, gw) = (&http, &gateway_b);
            async move {
                let v = search(http, gw, "城下町").await;
                (v["total"] == 1).then_some(v)
            }
        },
    )
    .await;
    assert_eq!(found["hits"][0]["title_id"], title_id.as_str(), "{found}");

    // A copy added through B: A's search shows it available at Yamaga.
    post(
        &http,
        &gateway_b,
        &token,
        "/api/v1/admin/items",
        json!({"title_id": title_id, "barcode": "REP-1", "branch": "yamaga"}),
    )
    .await;
    eventually(
        "A shows the copy added through B",
        Duration::from_secs(30),
        || {
            let (http, gw) = (&http, &gateway_a);
            async move {
                let v = search(http, gw, "城下町").await;
                (v["hits"][0]["availability"]["yamaga"]["available"] == 1).then_some(())
            }
        },
    )
    .await;

    // B stops on SIGTERM (a scale-down): it exits cleanly and A goes on serving.
    let status = b.terminate();
    assert!(status.success(), "replica B exits 0 on SIGTERM: {status:?}");
    post(
        &http,
        &gateway_a,
        &token,
        "/api/v1/admin/titles",
        json!({"title": "山香の祭り", "author": "山香 次郎", "type": "book"}),
    )
    .await;
    let v = search(&http, &gateway_a, "祭り").await;
    assert_eq!(v["total"], 1, "{v}");
}
