//! The one-command start: `kitsuki` with an empty data folder imports the real seed
//! records, answers Japanese searches in kanji and kana through the gateway, stops on
//! SIGTERM, and on the next start keeps its data without a second import. Its stdout holds
//! only the generated admin password (first start) and the `listening on` URL; its logs
//! are JSON lines on stderr (README, issue 8).

mod common;

use common::{start_logging_to, temp_dir, wait_ready};
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
    // No KITSUKI_ADMIN_PASSWORD: the first start generates one and prints it once.
    let envs = [("KITSUKI_LOG", "info")];
    let http = reqwest::Client::new();

    let first_log = dir.join("first.log");
    let mut first = start_logging_to("all-in-one", &args, &envs, &dir, &first_log);
    wait_ready(&http, &first.url).await;
    let printed = first.drain_lines();
    let [password_line, url_line] = printed.as_slice() else {
        panic!("stdout is the admin password and the URL, nothing else: {printed:?}");
    };
    let password = password_line
        .strip_prefix("created staff account 'admin' with password: ")
        .unwrap_or_else(|| panic!("{password_line}"));
    assert_eq!(
        url_line,
        &format!("kitsuki all-in-one listening on {}", first.url)
    );
    let r = http
        .post(format!("{}/api/v1/staff/session", first.url))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the printed password logs in");
    let logs = std::fs::read_to_string(&first_log).unwrap();
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    assert!(logs.contains("first start"), "{logs}");
    // README: of the seed, only the NDL file's 10 deleted (削除) records are skipped.
    assert!(
        logs.contains("\"bad_records_skipped\":0,\"deleted_records_skipped\":0")
            && logs.contains("\"bad_records_skipped\":0,\"deleted_records_skipped\":10"),
        "{logs}"
    );

    let (all, _) = total(&http, &first.url, "").await;
    assert!(all > 500, "the seed records are loaded: {all}");
    // Kanji (two characters) and kana (hiragana finds katakana; half-width too).
    let (n, titles) = total(&http, &first.url, "錦絵").await;
    assert!(
        n >= 1 && titles.iter().any(|t| t.contains("錦絵が語る江戸の食")),
        "{titles:?}"
    );
    // Its reading was generated with IPADIC at the import (issue 10), and romaji finds it.
    for q in ["にしきえ", "nishikie"] {
        let (_, titles) = total(&http, &first.url, q).await;
        assert!(
            titles.iter().any(|t| t.contains("錦絵が語る江戸の食")),
            "{q}: {titles:?}"
        );
    }
    assert!(
        logs.contains("readings of new titles are generated"),
        "{logs}"
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

    let second_log = dir.join("second.log");
    let mut second = start_logging_to("all-in-one again", &args, &envs, &dir, &second_log);
    wait_ready(&http, &second.url).await;
    assert_eq!(
        second.drain_lines(),
        vec![format!("kitsuki all-in-one listening on {}", second.url)],
        "the password is shown once"
    );
    let logs = std::fs::read_to_string(&second_log).unwrap();
    assert!(!logs.contains("first start"), "no second import: {logs}");
    let (again, _) = total(&http, &second.url, "").await;
    assert_eq!(again, all, "data kept");
    let (n, _) = total(&http, &second.url, "錦絵").await;
    assert!(n >= 1);
    assert!(second.terminate().success());
}

/// Without the dictionary (issue 10) the system still runs: `/readyz` is 200 and says that
/// readings are not generated, the log says what to install, kanji searches work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dictionary_it_runs_and_says_readings_are_not_generated() {
    let dir = temp_dir("embedded-no-dictionary");
    let data = dir.join("data");
    let data_s = data.to_string_lossy().to_string();
    let args = ["--listen", "127.0.0.1:0", "--data-dir", data_s.as_str()];
    let missing = dir.join("no-ipadic");
    let missing_s = missing.to_string_lossy().to_string();
    let envs = [
        ("KITSUKI_LOG", "info"),
        ("KITSUKI_IPADIC_DIR", missing_s.as_str()),
    ];
    let http = reqwest::Client::new();
    let log = dir.join("run.log");
    let app = start_logging_to("all-in-one", &args, &envs, &dir, &log);
    wait_ready(&http, &app.url).await;
    let r = http
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.starts_with("ready\n") && body.contains("readings are not generated"),
        "{body}"
    );
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("readings are not generated") && logs.contains("mecab-ipadic"),
        "{logs}"
    );
    let (_, titles) = total(&http, &app.url, "錦絵").await;
    assert!(
        titles.iter().any(|t| t.contains("錦絵が語る江戸の食")),
        "{titles:?}"
    );
}
