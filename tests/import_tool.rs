//! `kitsuki import FILE` as an operator runs it (issue 8), each test a separate process of
//! the real binary: without `--database-url` it writes the embedded run's catalogue in
//! `--data-dir`, and a running all-in-one on that folder finds the titles without a
//! restart (its outbox relay publishes the rows the import committed, its follower indexes
//! them); with `--nats-url` the events go out under `--bus-prefix`; skipped records fail
//! the import unless `--allow-skipped`; a file without records says so and fails; SIGTERM
//! (as Ctrl-C's SIGINT) stops it at once, since a tool has no drain to wait for.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{binary, eventually, start, temp_dir, wait_ready};
use kitsuki_platform::bus::nats::NatsBus;
use kitsuki_platform::bus::{ConsumerSpec, EventBus};
use kitsuki_platform::testing;
use serde_json::Value;

/// One MARCXML record: `(control number, title)`, or no title at all (a bad record).
fn marcxml(records: &[(&str, Option<&str>)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<collection xmlns=\"http://www.loc.gov/MARC21/slim\">\n",
    );
    for (id, title) in records {
        xml.push_str("<record><leader>00000nam a2200000 i 4500</leader>");
        xml.push_str(&format!(
            "<controlfield tag=\"001\">{id}</controlfield><controlfield tag=\"003\">KITSUKITEST</controlfield>"
        ));
        if let Some(t) = title {
            xml.push_str(&format!(
                "<datafield tag=\"245\" ind1=\"0\" ind2=\"0\"><subfield code=\"a\">{t}</subfield></datafield>"
            ));
        } else {
            xml.push_str("<datafield tag=\"500\" ind1=\" \" ind2=\" \"><subfield code=\"a\">no title</subfield></datafield>");
        }
        xml.push_str("</record>\n");
    }
    xml.push_str("</collection>\n");
    xml
}

fn import(args: &[&str], cwd: &Path) -> Output {
    Command::new(binary())
        .arg("import")
        .args(args)
        .current_dir(cwd)
        .env("KITSUKI_LOG", "warn")
        .env_remove("KITSUKI_DATABASE_URL")
        .env_remove("KITSUKI_DATA_DIR")
        .env_remove("KITSUKI_INDEX_DIR")
        .env_remove("KITSUKI_NATS_URL")
        .env_remove("KITSUKI_BUS_PREFIX")
        .output()
        .expect("run kitsuki import")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn titles_found(http: &reqwest::Client, base: &str, q: &str) -> Vec<String> {
    let r = http
        .get(format!("{base}/api/v1/titles"))
        .query(&[("q", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_beside_a_running_all_in_one_is_searchable_there_without_a_restart() {
    let dir = temp_dir("import-running");
    let data = dir.join("data");
    let data_s = data.to_string_lossy().to_string();
    let app = start(
        "all-in-one",
        &["--listen", "127.0.0.1:0", "--data-dir", &data_s],
        &[("KITSUKI_ADMIN_PASSWORD", "import-test-admin")],
        &dir,
    );
    let http = reqwest::Client::new();
    wait_ready(&http, &app.url).await;
    assert!(titles_found(&http, &app.url, "星図鑑").await.is_empty());

    let file = dir.join("new.xml");
    std::fs::write(
        &file,
        marcxml(&[
            ("imp-1", Some("杵築の星図鑑")),
            ("imp-2", Some("山香の星図鑑")),
        ]),
    )
    .unwrap();
    // The embedded default: no --database-url, the all-in-one's data folder.
    let out = import(&["--data-dir", &data_s, file.to_str().unwrap()], &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 created"),
        "{}",
        text(&out)
    );

    // Bounded, and generous: the running process's relay publishes the events of its own
    // first start (the seed's, some 1,800) before the import's, which takes tens of
    // seconds on a loaded debug build.
    let found = eventually(
        "the imported titles in the running all-in-one's search",
        Duration::from_secs(120),
        || {
            let (http, base) = (http.clone(), app.url.clone());
            async move {
                let t = titles_found(&http, &base, "星図鑑").await;
                (t.len() == 2).then_some(t)
            }
        },
    )
    .await;
    assert!(
        found.iter().any(|t| t.contains("杵築の星図鑑")),
        "{found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_records_fail_the_import_unless_allowed() {
    let dir = temp_dir("import-skipped");
    let data_s = dir.join("data").to_string_lossy().to_string();
    let file = dir.join("mixed.xml");
    std::fs::write(
        &file,
        marcxml(&[("ok-1", Some("よい記録")), ("bad-1", None)]),
    )
    .unwrap();
    let file_s = file.to_str().unwrap();

    let out = import(&["--data-dir", &data_s, file_s], &dir);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 records skipped") && stderr.contains("--allow-skipped"),
        "{}",
        text(&out)
    );
    // The good record is in; the same file again with the skip allowed exits 0.
    let out = import(&["--data-dir", &data_s, "--allow-skipped", file_s], &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 already present"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_without_records_says_so_and_fails() {
    let dir = temp_dir("import-empty");
    let data_s = dir.join("data").to_string_lossy().to_string();
    let file = dir.join("empty.xml");
    std::fs::write(&file, marcxml(&[])).unwrap();
    let out = import(
        &[
            "--data-dir",
            &data_s,
            "--allow-skipped",
            file.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no records"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_url_the_events_go_out_under_the_bus_prefix() {
    let dir = temp_dir("import-nats");
    let prefix = testing::unique_prefix();
    let bus = NatsBus::connect(&testing::nats_url(), &prefix)
        .await
        .unwrap();
    let file = dir.join("one.xml");
    std::fs::write(&file, marcxml(&[("nats-1", Some("大田の星図鑑"))])).unwrap();
    let db = format!("sqlite://{}", dir.join("catalog.db").display());
    let index = dir.join("index").to_string_lossy().to_string();
    let out = import(
        &[
            "--database-url",
            &db,
            "--index-dir",
            &index,
            "--nats-url",
            &testing::nats_url(),
            "--bus-prefix",
            &prefix,
            file.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("published 1 events"),
        "{}",
        text(&out)
    );

    let mut sub = bus
        .subscribe(&ConsumerSpec::new("import-test", "catalog.titles.imported"))
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("the batch's event under the test prefix")
        .expect("a delivery")
        .unwrap();
    // One event for the import's batch, not one per title.
    assert_eq!(delivery.event.subject, "catalog.titles.imported");
    delivery.ack().await.unwrap();
    drop(sub);
    let _ = bus.delete_stream().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_stops_an_import_at_once() {
    let dir = temp_dir("import-signal");
    let data_s = dir.join("data").to_string_lossy().to_string();
    // Large enough that it is still reading or storing when the signal comes.
    let ids: Vec<String> = (0..60_000).map(|i| format!("sig-{i}")).collect();
    let records: Vec<(&str, Option<&str>)> = ids
        .iter()
        .map(|id| (id.as_str(), Some("合図で止まる本")))
        .collect();
    let file = dir.join("large.xml");
    std::fs::write(&file, marcxml(&records)).unwrap();
    let mut child = Command::new(binary())
        .args(["import", "--data-dir", &data_s, file.to_str().unwrap()])
        .current_dir(&dir)
        .env("KITSUKI_LOG", "warn")
        .env_remove("KITSUKI_DATABASE_URL")
        .spawn()
        .expect("run kitsuki import");
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            common::stop_child(&mut child);
            panic!("kitsuki import went on after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !status.success(),
        "stopped by the signal, not finished: {status:?}"
    );
}

/// `kitsuki readings regenerate` (issue 10): titles imported without a dictionary get their
/// readings when it runs with one, and a second run changes nothing.
#[test]
fn readings_regenerate_fills_the_readings_an_import_without_a_dictionary_left_out() {
    let dir = temp_dir("readings-regenerate");
    let data = dir.join("data");
    let file = dir.join("titles.xml");
    std::fs::write(
        &file,
        marcxml(&[("r1", Some("錦絵の世界")), ("r2", Some("江戸の暮らし"))]),
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("import")
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .current_dir(&dir)
        .env("KITSUKI_LOG", "warn")
        .env("KITSUKI_IPADIC_DIR", dir.join("no-ipadic"))
        .env_remove("KITSUKI_DATABASE_URL")
        .env_remove("KITSUKI_DATA_DIR")
        .env_remove("KITSUKI_INDEX_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readings are not generated"),
        "{}",
        text(&out)
    );
    let regenerate = || {
        Command::new(binary())
            .args(["readings", "regenerate", "--database-url"])
            .arg(format!("sqlite://{}", data.join("catalog.db").display()))
            .arg("--index-dir")
            .arg(data.join("catalog-index"))
            .current_dir(&dir)
            .env("KITSUKI_LOG", "warn")
            .env_remove("KITSUKI_IPADIC_DIR")
            .env_remove("KITSUKI_DATABASE_URL")
            .env_remove("KITSUKI_INDEX_DIR")
            .output()
            .unwrap()
    };
    let first = regenerate();
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("for 2 titles, 2 changed"),
        "{}",
        text(&first)
    );
    let second = regenerate();
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("for 2 titles, 0 changed"),
        "{}",
        text(&second)
    );
}
