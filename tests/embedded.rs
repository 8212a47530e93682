//! The one-command start: `kitsuki` with an empty data folder imports the real seed
//! records, answers Japanese searches in kanji and kana through the gateway, stops on
//! SIGTERM, and on the next start keeps its data without a second import.

mod common;

use common::{start, temp_dir, wait_ready};
use serde_json::Value;

async fn total(http: &reqwest::Client, base: &str, q: &str) -> (u64, Vec<String>) {
    let r = http
        .get(format!("{base}/api/v1/titles"))
        .query(&[("q", q), ("per_page", "50")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let titles = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap_or_default().to_string())
        .collect();
    (v["total"].as_u64().unwrap(), titles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_first_start_imports_searches_and_restarts_without_reimport() {
    let dir = temp_dir("embedded");
    let data = dir.join("data");
    let data_s = data.to_string_lossy().to_string();
    let args = ["--listen", "127.0.0.1:0", "--data-dir", data_s.as_str()];
    let envs = [("KITSUKI_ADMIN_PASSWORD", "embedded-test-admin")];
    let http = reqwest::Client::new();

    let mut first = start("all-in-one", &args, &envs, &dir);
    wait_ready(&http, &first.url).await;
    let printed = first.drain_lines().join("\n");
    assert!(printed.contains("first start"), "{printed}");

    let (all, _) = total(&http, &first.url, "").await;
    assert!(all > 500, "the seed records are loaded: {all}");
    // Kanji (two characters) and kana (hiragana finds katakana; half-width too).
    let (n, titles) = total(&http, &first.url, "錦絵").await;
    assert!(
        n >= 1 && titles.iter().any(|t| t.contains("錦絵が語る江戸の食")),
        "{titles:?}"
    );
    let (n, titles) = total(&http, &first.url, "ちょこれーと").await;
    assert!(
        n >= 1 && titles.iter().any(|t| t.contains("毒入りチョコレート事件")),
        "{titles:?}"
    );
    let (_, half) = total(&http, &first.url, "ﾁｮｺﾚｰﾄ").await;
    assert_eq!(half, titles);
    // LoC records: original script from the 880 fields.
    let page = http
        .get(format!("{}/", first.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("杵築市立図書館"));

    let status = first.terminate();
    assert!(status.success(), "graceful stop on SIGTERM: {status:?}");

    let mut second = start("all-in-one again", &args, &envs, &dir);
    wait_ready(&http, &second.url).await;
    let printed = second.drain_lines().join("\n");
    assert!(
        !printed.contains("first start"),
        "no second import: {printed}"
    );
    let (again, _) = total(&http, &second.url, "").await;
    assert_eq!(again, all, "data kept");
    let (n, _) = total(&http, &second.url, "錦絵").await;
    assert!(n >= 1);
    assert!(second.terminate().success());
}
