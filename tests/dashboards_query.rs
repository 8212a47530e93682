//! The dashboards and alert rules are valid PromQL against real data (issue 5): a real
//! Prometheus (`/usr/bin/prometheus`, Debian's package, installed by scripts/test) scrapes
//! the system started as separate processes ([`System::start`]) every second, with the
//! alert rules of k8s/base/monitoring.yaml loaded, and answers every panel query of the
//! Grafana dashboards (for each branch of the `branch` variable) and every alert
//! expression with `status: success`. The alert rules evaluate without error, and the
//! instance-down alerts stay inactive while every process answers (their selectors match
//! the labels the processes really export). After a checkout and a checkin at one branch,
//! that branch's checkouts and checkins panels show them, another branch's show 0, and
//! no panel of the branch dashboard is without data for any branch.
//!
//! tests/metrics_exported.rs checks the names against the code without Prometheus;
//! k8s/tests/alerts.test.yaml (run by scripts/check-manifests) unit-tests when each alert
//! fires.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::system::{BRANCHES, System, counter_patron, title_with_copies};
use common::{eventually, free_port, temp_dir};
use serde_json::{Value, json};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The branch the traffic of the test goes to; the others stay quiet.
const BUSY: &str = "ota";
const QUIET: &str = "kitsuki";

/// Grafana's built-in interval variables, as a dashboard over the last hour with a 1 s
/// scrape would have them (`$__rate_interval` wide enough that the samples before the
/// traffic stay in the window however slow a loaded machine is).
const GRAFANA_VARIABLES: &[(&str, &str)] = &[
    ("__rate_interval", "5m"),
    ("__interval", "1m"),
    ("__range", "1h"),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---- the files ---------------------------------------------------------------------------

/// Every panel query of a dashboard file, with its panel's title.
fn panel_queries(file: &str) -> Vec<(String, String)> {
    let path = repo().join("k8s/base/dashboards").join(file);
    let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let out = common::panel_queries(&d);
    assert!(!out.is_empty(), "{file}: no queries");
    out
}

/// A panel query as Grafana sends it: the variables replaced (`$name` and `${name}`).
fn substitute(expr: &str, branch: Option<&str>) -> String {
    let mut vars: Vec<(&str, &str)> = GRAFANA_VARIABLES.to_vec();
    if let Some(b) = branch {
        vars.push(("branch", b));
    }
    // Longest names first, so that `$__interval` does not eat `$__interval_ms`-like names.
    vars.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut out = expr.to_string();
    for (name, value) in vars {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    assert!(
        !out.contains('$'),
        "a variable left in {out:?} (from {expr:?})"
    );
    out
}

/// The PrometheusRule's `spec.groups` as a Prometheus rules file. The operator hands
/// Prometheus exactly that; monitoring.yaml keeps `spec:` with only `groups:` as its last
/// key, so the block is cut out and unindented (scripts/check-manifests does the same with
/// a YAML library for promtool).
fn rules_file() -> String {
    let text = std::fs::read_to_string(repo().join("k8s/base/monitoring.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let spec = lines
        .iter()
        .position(|l| *l == "spec:")
        .expect("monitoring.yaml: a top-level `spec:`");
    assert_eq!(
        lines.get(spec + 1).copied(),
        Some("  groups:"),
        "monitoring.yaml: `spec:` starts with `groups:`"
    );
    let mut out = String::new();
    for l in &lines[spec + 1..] {
        if l.trim().is_empty() {
            out.push('\n');
            continue;
        }
        let inner = l
            .strip_prefix("  ")
            .unwrap_or_else(|| panic!("monitoring.yaml: `groups:` is not the last key ({l:?})"));
        out.push_str(inner);
        out.push('\n');
    }
    out
}

// ---- Prometheus --------------------------------------------------------------------------

/// A Prometheus server of this test: own port, own folder (config, rules, TSDB, log),
/// stopped (SIGTERM, then SIGKILL) and its folder removed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    dir: PathBuf,
    http: reqwest::Client,
}

/// Fails (before anything is started) when the binary is not installed.
fn require_prometheus() {
    assert!(
        Path::new(PROMETHEUS).is_file(),
        "{PROMETHEUS} is missing: run `bash scripts/test` once (its ensure_prometheus \
         installs Debian's package prometheus), or `apt-get install --no-install-recommends prometheus`"
    );
}

impl Prometheus {
    /// Starts it scraping `targets` (`host:port`, `/metrics`) every second, with `rules`
    /// evaluated every second, and waits until it is ready.
    async fn start(targets: &[&str], rules: &str) -> Prometheus {
        require_prometheus();
        let dir = temp_dir("prometheus");
        std::fs::write(dir.join("kitsuki.rules.yaml"), rules).unwrap();
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - kitsuki.rules.yaml\n\
                 scrape_configs:\n  - job_name: kitsuki\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        // Waited for in Drop, which always reaps the child.
        #[allow(clippy::zombie_processes)]
        let child = Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            http: reqwest::Client::new(),
        };
        let ready = format!("{}/-/ready", p.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = p.http.get(&ready).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready; its log:\n{}",
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `/api/v1/query` now: `Ok(data)` on `status: success`, else the error it gave.
    async fn query(&self, promql: &str) -> Result<Value, String> {
        let resp = self
            .http
            .post(format!("{}/api/v1/query", self.url))
            .form(&[("query", promql)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let code = resp.status();
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!(
                "HTTP {code}: {} {}",
                body["errorType"], body["error"]
            ))
        }
    }

    /// The samples of an instant vector query: (labels, value).
    async fn vector(&self, promql: &str) -> Vec<(Value, f64)> {
        let data = self
            .query(promql)
            .await
            .unwrap_or_else(|e| panic!("{promql}: {e}"));
        assert_eq!(data["resultType"], "vector", "{promql}: {data}");
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let v = s["value"][1].as_str().unwrap().parse().unwrap();
                (s["metric"].clone(), v)
            })
            .collect()
    }

    /// The alerting rules as Prometheus loaded and last evaluated them.
    async fn rules(&self) -> Vec<Value> {
        let body: Value = self
            .http
            .get(format!("{}/api/v1/rules?type=alert", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        body["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        common::stop_child(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Why an [`eventually`] wait is still waiting, printed when it changes (not on every poll),
/// so that a timeout comes with its reason.
#[derive(Default)]
struct Why(std::sync::Mutex<String>);

impl Why {
    fn note(&self, reason: String) {
        let mut last = self.0.lock().unwrap();
        if *last != reason {
            eprintln!("waiting: {reason}");
            *last = reason;
        }
    }
}

// ---- the test ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_answers_every_dashboard_panel_and_alert_rule_of_a_running_system() {
    require_prometheus();
    let rules = rules_file();
    let sys = System::start("dashboards").await;
    let targets: Vec<&str> = sys.processes().iter().map(|p| p.addr()).collect();
    let prom = Prometheus::start(&targets, &rules).await;
    let n = targets.len() as f64;
    let why = Why::default();

    // Every process scraped (and by now registered its counters and counted its gauges).
    eventually(
        "prometheus to scrape every process",
        Duration::from_secs(30),
        || async {
            let up = prom.vector("sum(up)").await;
            let info = prom.vector("count(kitsuki_build_info)").await;
            if up.first().map(|s| s.1) == Some(n) && info.first().map(|s| s.1) == Some(n) {
                return Some(());
            }
            why.note(format!(
                "{n} targets: sum(up) {up:?}, count(kitsuki_build_info) {info:?}"
            ));
            None
        },
    )
    .await;

    // The alert rules load and evaluate without error; with every process up, the
    // instance-down alerts are inactive: `absent()` finds each branch's build_info, and
    // every `up` is 1.
    let loaded = eventually(
        "every alert rule evaluated on the scraped data",
        Duration::from_secs(30),
        || async {
            let rules = prom.rules().await;
            let unsettled: Vec<String> = rules
                .iter()
                .filter(|r| {
                    r["health"] != "ok"
                        || (["KitsukiBranchInstanceDown", "KitsukiTargetDown"]
                            .contains(&r["name"].as_str().unwrap_or_default())
                            && r["state"] != "inactive")
                })
                .map(|r| {
                    format!(
                        "{} health {} state {} {} {}",
                        r["name"], r["health"], r["state"], r["lastError"], r["alerts"]
                    )
                })
                .collect();
            if unsettled.is_empty() && !rules.is_empty() {
                return Some(rules);
            }
            why.note(format!("alert rules: {unsettled:?}"));
            None
        },
    )
    .await;
    assert_eq!(
        loaded.len(),
        rules.matches("- alert:").count(),
        "{loaded:?}"
    );

    // Every alert expression and every panel query, for each branch: valid PromQL that
    // Prometheus answers. All failures at once.
    let mut failures = Vec::new();
    for r in &loaded {
        let q = r["query"].as_str().unwrap();
        if let Err(e) = prom.query(q).await {
            failures.push(format!("alert {}: {q}\n  {e}", r["name"]));
        }
    }
    let mut queried = 0;
    for file in ["overview.json", "branch.json"] {
        for (title, expr) in panel_queries(file) {
            let branches: Vec<Option<&str>> = if expr.contains("$branch") {
                BRANCHES.iter().copied().map(Some).collect()
            } else {
                vec![None]
            };
            for b in branches {
                let q = substitute(&expr, b);
                queried += 1;
                if let Err(e) = prom.query(&q).await {
                    failures.push(format!("{file} panel {title:?} ({b:?}): {q}\n  {e}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "Prometheus rejected:\n{}",
        failures.join("\n")
    );
    assert!(queried > 20, "only {queried} panel queries");

    // A checkout and a checkin at one branch, through the gateway's API.
    let api = &sys.api;
    let staff = sys.staff().await;
    title_with_copies(
        api,
        &staff,
        "大田の四季",
        "大田 太郎",
        &[("OT-DASH-1", BUSY)],
    )
    .await;
    let borrower = counter_patron(api, &staff, "貸出 花子").await;
    let (s, v) = eventually(
        "the item known to the branch's desk",
        Duration::from_secs(30),
        || async {
            let (s, v) = api
                .call(
                    "POST",
                    &format!("/api/v1/branches/{BUSY}/checkouts"),
                    Some(&staff),
                    Some(json!({"card_number": borrower, "barcode": "OT-DASH-1"})),
                )
                .await;
            (s != 404).then_some((s, v))
        },
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/v1/branches/{BUSY}/checkins"),
            Some(&staff),
            Some(json!({"barcode": "OT-DASH-1"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // The branch dashboard shows them for that branch once scraped, and 0 for a quiet one
    // (its counters are registered at 0, so the panel is not empty).
    let branch_panels = panel_queries("branch.json");
    let panel = |title: &str| -> String {
        branch_panels
            .iter()
            .find(|(t, _)| t == title)
            .unwrap_or_else(|| panic!("branch.json: no panel {title:?}"))
            .1
            .clone()
    };
    for title in ["Checkouts", "Checkins by routing"] {
        let busy = substitute(&panel(title), Some(BUSY));
        let shown = eventually(
            &format!("{title} of {BUSY} to show the traffic"),
            Duration::from_secs(30),
            || async {
                let v = prom.vector(&busy).await;
                v.iter().any(|(_, x)| *x > 0.0).then_some(v)
            },
        )
        .await;
        assert!(!shown.is_empty());
        // The quiet branch's series exist once its instance has been scraped: wait for
        // them (a scrape can lag the busy one's), then every value must be 0.
        let quiet_query = substitute(&panel(title), Some(QUIET));
        let quiet = eventually(
            &format!("{title} of {QUIET} to have its series"),
            Duration::from_secs(30),
            || async {
                let v = prom.vector(&quiet_query).await;
                (!v.is_empty()).then_some(v)
            },
        )
        .await;
        assert!(
            !quiet.is_empty() && quiet.iter().all(|(_, x)| *x == 0.0),
            "{title} of {QUIET}, where nothing happened: {quiet:?}"
        );
    }

    // No panel of the branch dashboard is "no data" for any branch: the counters are
    // registered at 0 and the gauges counted from the start, and every matcher on `branch`
    // (or `service`, `routing`, …) finds the series the instances export.
    eventually(
        "every branch panel to have data for every branch",
        Duration::from_secs(30),
        || async {
            for (title, expr) in &branch_panels {
                for b in BRANCHES {
                    if prom.vector(&substitute(expr, Some(b))).await.is_empty() {
                        why.note(format!(
                            "branch.json panel {title:?} has no data for {b}: {expr}"
                        ));
                        return None;
                    }
                }
            }
            Some(())
        },
    )
    .await;
}

#[test]
fn grafana_variables_are_replaced_and_the_rules_file_has_every_alert() {
    assert_eq!(
        substitute(
            "sum(increase(x{branch=\"$branch\"}[$__rate_interval])) / ${__range}",
            Some("ota")
        ),
        "sum(increase(x{branch=\"ota\"}[5m])) / 1h"
    );
    let rules = rules_file();
    assert!(rules.starts_with("groups:\n"), "{rules}");
    assert!(rules.contains("\n- name: kitsuki.requests\n"), "{rules}");
    assert!(rules.matches("- alert: Kitsuki").count() >= 5, "{rules}");
}
