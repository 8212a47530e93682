//! Dashboards and alert rules cannot drift from the code (issue 5): every metric name used
//! in a PromQL expression of the Grafana dashboards (k8s/base/dashboards/*.json) or of the
//! alert rules (k8s/base/monitoring.yaml) is exported by a running system. The system is
//! started as separate processes ([`System::start`]), each process's `/metrics` is scraped,
//! and each name must be a metric family there; each label a selector matches on must be
//! a label of that metric. Without traffic: the services register their counters at 0, the
//! request metrics appear with the readiness probes and the few calls made here.
//!
//! Beside it, checks of the files themselves: the dashboards are JSON with the `branch`
//! variable, every alert has a summary and a description, and the expression scanner takes
//! metric names only (not functions, keywords, label names, durations or variables).
//! tests/dashboards_query.rs has a real Prometheus answer the same expressions.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::eventually;
use common::system::{BRANCHES, System};
use serde_json::Value;

/// Names Prometheus makes itself for every target or rule; they are never in a scrape.
const PROMETHEUS_NAMES: &[&str] = &[
    // 1 when the target's last scrape succeeded (the instance-down alert).
    "up",
    // Per-scrape figures Prometheus records for each target.
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    // The state of alerting rules.
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// Labels Prometheus puts on at scrape time (target labels), which a process does not
/// export itself.
const TARGET_LABELS: &[&str] = &["job", "instance", "namespace", "pod", "container"];

fn k8s_base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s/base")
}

// ---- the files ---------------------------------------------------------------------------

/// Every dashboard file, parsed.
fn dashboards() -> Vec<(String, Value)> {
    let dir = k8s_base().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().to_string(), v)
        })
        .collect()
}

/// The PromQL of a dashboard: every panel's targets (rows' nested panels too).
fn dashboard_exprs(d: &Value) -> Vec<String> {
    common::panel_queries(d)
        .into_iter()
        .map(|(_, expr)| expr)
        .collect()
}

/// One alerting rule of monitoring.yaml as far as these checks need it.
#[derive(Debug, Default)]
struct Alert {
    name: String,
    expr: String,
    summary: String,
    description: String,
}

/// Reads the alerting rules of monitoring.yaml. The file keeps to a plain layout (one
/// `- alert:` item per rule, values inline or as `|`/`>-` blocks), which this reads
/// without a YAML library; scripts/check-manifests validates the same file against the
/// PrometheusRule schema.
fn alerts() -> Vec<Alert> {
    let text = std::fs::read_to_string(k8s_base().join("monitoring.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            alerts.push(Alert {
                name: name.trim().to_string(),
                ..Alert::default()
            });
        } else if let Some(current) = alerts.last_mut() {
            for key in ["expr", "summary", "description"] {
                let Some(rest) = trimmed.strip_prefix(&format!("{key}:")) else {
                    continue;
                };
                let rest = rest.trim();
                let value = if rest.starts_with('|') || rest.starts_with('>') {
                    // A block: the following lines indented deeper than the key.
                    let own = indent(line);
                    let mut block = Vec::new();
                    while i + 1 < lines.len()
                        && (lines[i + 1].trim().is_empty() || indent(lines[i + 1]) > own)
                    {
                        i += 1;
                        block.push(lines[i].trim());
                    }
                    block.join("\n")
                } else {
                    rest.trim_matches(['\'', '"']).to_string()
                };
                match key {
                    "expr" => current.expr = value,
                    "summary" => current.summary = value,
                    _ => current.description = value,
                }
            }
        }
        i += 1;
    }
    alerts
}

// ---- PromQL --------------------------------------------------------------------------------

/// A metric used in an expression, with the label names its matchers name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Selector {
    name: String,
    labels: BTreeSet<String>,
}

/// Words of PromQL that are not metric names: aggregation operators, binary operators,
/// modifiers and literals. Functions are told by the `(` after them.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "atan2",
    "offset",
    "start",
    "end",
    "inf",
    "nan",
];

/// Keywords followed by a list of label names in parentheses.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric selectors of a PromQL expression (Grafana's `$variables` allowed). Skips
/// strings, label matchers (recorded as the selector's labels), ranges and durations,
/// label lists of `by`/`on`/…, function names and keywords.
fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut i = 0;
    // Skips a quoted string starting at `i`; returns the index after it.
    let skip_string = |mut i: usize| {
        let q = chars[i];
        i += 1;
        while i < chars.len() && chars[i] != q {
            if chars[i] == '\\' {
                i += 1;
            }
            i += 1;
        }
        i + 1
    };
    // Skips to after the bracket closing the one at `i`.
    let skip_group = |mut i: usize, open: char, close: char| {
        let mut depth = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '"' || c == '\'' || c == '`' {
                i = skip_string(i);
                continue;
            }
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            i += 1;
        }
        i
    };
    let next_non_space = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(i);
        } else if c == '[' {
            i = skip_group(i, '[', ']');
        } else if c == '{' {
            // A selector without a name before it: nothing to check by name.
            i = skip_group(i, '{', '}');
        } else if c == '$' {
            // A Grafana variable: `$name` or `${name}`.
            i += 1;
            if i < chars.len() && chars[i] == '{' {
                i = skip_group(i, '{', '}');
            } else {
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || c == '.' {
            // Numbers and durations (`0.95`, `10m`, `1e3`).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if ident_start(c) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let after = next_non_space(i);
            let paren_follows = after < chars.len() && chars[after] == '(';
            if LABEL_LISTS.contains(&word.as_str()) {
                if paren_follows {
                    i = skip_group(after, '(', ')');
                }
            } else if KEYWORDS.contains(&word.as_str()) || paren_follows {
                // An operator or a function.
            } else {
                let mut labels = BTreeSet::new();
                if after < chars.len() && chars[after] == '{' {
                    let end = skip_group(after, '{', '}');
                    let inner: String = chars[after + 1..end - 1].iter().collect();
                    labels = matcher_labels(&inner);
                    i = end;
                }
                out.push(Selector { name: word, labels });
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The label names of the matchers inside `{…}`: `a="x", b=~"y"` → {a, b}.
fn matcher_labels(inner: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    let mut name = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                // The value: skip it.
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
            }
            '=' | '!' => {
                if !name.is_empty() {
                    labels.insert(std::mem::take(&mut name));
                }
            }
            c if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
            _ => name.clear(),
        }
    }
    labels
}

/// Every selector of the dashboards and alert rules, with where it is used.
fn used_selectors() -> BTreeMap<Selector, BTreeSet<String>> {
    let mut used: BTreeMap<Selector, BTreeSet<String>> = BTreeMap::new();
    for (file, d) in dashboards() {
        for expr in dashboard_exprs(&d) {
            for s in selectors(&expr) {
                used.entry(s)
                    .or_default()
                    .insert(format!("dashboards/{file}"));
            }
        }
    }
    for a in alerts() {
        for s in selectors(&a.expr) {
            used.entry(s)
                .or_default()
                .insert(format!("alert {}", a.name));
        }
    }
    used
}

// ---- the scrape ----------------------------------------------------------------------------

/// What the scraped processes export: the families with their type, and for every sample
/// name the label names seen on it.
#[derive(Debug, Default)]
struct Exported {
    families: BTreeMap<String, String>,
    labels: BTreeMap<String, BTreeSet<String>>,
    /// Every sample line, for the checks of particular series.
    samples: Vec<(String, BTreeMap<String, String>)>,
}

impl Exported {
    /// Adds one `/metrics` page (Prometheus text format).
    fn add(&mut self, page: &str) {
        for line in page.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    self.families.insert(name.to_string(), kind.to_string());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (name, labels) = parse_sample(line);
            self.labels
                .entry(name.clone())
                .or_default()
                .extend(labels.keys().cloned());
            self.samples.push((name, labels));
        }
    }

    /// Whether `name` is a family, or a histogram's or summary's series of one.
    fn exports(&self, name: &str) -> bool {
        if self.families.contains_key(name) {
            return true;
        }
        [
            ("_bucket", &["histogram"][..]),
            ("_sum", &["histogram", "summary"][..]),
            ("_count", &["histogram", "summary"][..]),
        ]
        .iter()
        .any(|(suffix, kinds)| {
            name.strip_suffix(suffix)
                .and_then(|base| self.families.get(base))
                .is_some_and(|k| kinds.contains(&k.as_str()))
        })
    }
}

/// `name{a="x",b="y"} 1` → (name, {a: x, b: y}).
fn parse_sample(line: &str) -> (String, BTreeMap<String, String>) {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..end].to_string();
    let mut labels = BTreeMap::new();
    if line[end..].starts_with('{') {
        let mut rest = &line[end + 1..];
        while let Some(eq) = rest.find("=\"") {
            let key = rest[..eq].trim_start_matches([',', ' ']).to_string();
            let mut value = String::new();
            let mut chars = rest[eq + 2..].char_indices();
            let mut close = rest.len();
            while let Some((j, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, d)) = chars.next() {
                            value.push(d);
                        }
                    }
                    '"' => {
                        close = eq + 2 + j + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
            rest = &rest[close.min(rest.len())..];
            if rest.starts_with('}') {
                break;
            }
        }
    }
    (name, labels)
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let resp = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(
        resp.status().is_success(),
        "{base}/metrics: {}",
        resp.status()
    );
    resp.text().await.unwrap()
}

/// The names (or a name's matcher labels) used but not exported, each with where used.
fn missing(exported: &Exported, used: &BTreeMap<Selector, BTreeSet<String>>) -> Vec<String> {
    let mut missing = Vec::new();
    for (s, places) in used {
        if PROMETHEUS_NAMES.contains(&s.name.as_str()) {
            continue;
        }
        if !exported.exports(&s.name) {
            missing.push(format!("{} (used in {places:?}) is not exported", s.name));
            continue;
        }
        let have = exported.labels.get(&s.name).cloned().unwrap_or_default();
        for l in &s.labels {
            if !have.contains(l) && !TARGET_LABELS.contains(&l.as_str()) {
                missing.push(format!(
                    "{} has no label {l} (used in {places:?}; it has {have:?})",
                    s.name
                ));
            }
        }
    }
    missing
}

/// Every sample of one process's page without its `service` label, or, for a circulation
/// instance (`branch` given), without `branch` (README "Metrics": the instances' series are
/// told apart by the process, not by the scrape's `instance`).
fn unlabelled(page: &str, process: &str, branch: Option<&str>) -> Vec<String> {
    let mut own = Exported::default();
    own.add(page);
    let mut wrong = BTreeSet::new();
    for (name, labels) in &own.samples {
        if labels.get("service").is_none_or(|s| s.is_empty()) {
            wrong.insert(format!("{process}: {name} has no service label"));
        }
        if let Some(b) = branch
            && labels.get("branch").is_none_or(|l| l.is_empty())
        {
            wrong.insert(format!("{process}: {name} has no branch label (want {b})"));
        }
    }
    wrong.into_iter().collect()
}

// ---- the tests -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboards_and_alerts_is_exported_by_a_running_system() {
    let used = used_selectors();
    assert!(
        used.keys()
            .any(|s| s.name.starts_with("kitsuki_circulation_")),
        "the scanner found no circulation metric: {used:?}"
    );
    let sys = System::start("metrics").await;
    let http = &sys.api.http;
    // A little traffic on every listener, so that the request metrics have samples (the
    // readiness probes of the start were counted already).
    for p in sys.processes() {
        let r = http.get(format!("{}/healthz", p.url)).send().await.unwrap();
        assert!(r.status().is_success());
    }
    let (s, _) = sys
        .api
        .call("GET", "/api/v1/search?q=test", None, None)
        .await;
    assert!(s < 500, "search answered {s}");

    // The consumer-lag gauge appears once each consumer has subscribed and been sampled,
    // shortly after readiness: scrape until nothing is missing (or report what is).
    let deadline = Instant::now() + Duration::from_secs(45);
    let exported = loop {
        let mut exported = Exported::default();
        for p in sys.processes() {
            exported.add(&scrape(http, &p.url).await);
        }
        let missing = missing(&exported, &used);
        if missing.is_empty() {
            break exported;
        }
        assert!(
            Instant::now() < deadline,
            "used in k8s/base but not exported by the running system:\n{}",
            missing.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // The branch-down alert's absent() selectors: each instance says service and branch.
    for (branch, p) in BRANCHES.iter().zip(&sys.circulation) {
        let mut own = Exported::default();
        own.add(&scrape(http, &p.url).await);
        assert!(
            own.samples.iter().any(|(n, l)| n == "kitsuki_build_info"
                && l.get("service").map(String::as_str) == Some("circulation")
                && l.get("branch").map(String::as_str) == Some(branch)),
            "circulation {branch} exports no kitsuki_build_info{{service=\"circulation\",branch=\"{branch}\"}}"
        );
        // Each instance counts its gauges in a background job that starts beside readiness:
        // the first round may not be done yet (the loop above is satisfied by any branch).
        eventually(
            &format!("circulation {branch} to count a hold shelf of its own"),
            Duration::from_secs(30),
            || async {
                let mut own = Exported::default();
                own.add(&scrape(http, &p.url).await);
                own.samples
                    .iter()
                    .any(|(n, l)| {
                        n == "kitsuki_circulation_hold_shelf_holds"
                            && l.get("branch").map(String::as_str) == Some(branch)
                    })
                    .then_some(())
            },
        )
        .await;
    }
    assert!(exported.families.len() > 10);

    // Every family of every role carries `service`; every one of a circulation instance its
    // `branch` too (the consumer lag, the outbox, the circulation counters among them).
    let mut wrong = Vec::new();
    for p in sys.processes() {
        let branch = BRANCHES
            .iter()
            .zip(&sys.circulation)
            .find(|(_, c)| c.url == p.url)
            .map(|(b, _)| *b);
        wrong.extend(unlabelled(&scrape(http, &p.url).await, &p.name, branch));
    }
    assert!(
        wrong.is_empty(),
        "metrics without their labels:\n{}",
        wrong.join("\n")
    );
}

/// What the label check of the running system reports on a made-up page.
#[test]
fn a_metric_without_service_or_a_circulation_metric_without_branch_is_caught() {
    let page = "# TYPE kitsuki_requests_total counter\n\
         kitsuki_requests_total{service=\"circulation\",branch=\"ota\",route=\"/\"} 3\n\
         # TYPE kitsuki_bus_consumer_pending gauge\n\
         kitsuki_bus_consumer_pending{consumer=\"c\"} 0\n\
         # TYPE kitsuki_outbox_published_total counter\n\
         kitsuki_outbox_published_total{service=\"circulation\"} 1\n";
    assert_eq!(
        unlabelled(page, "circulation-ota", Some("ota")),
        [
            "circulation-ota: kitsuki_bus_consumer_pending has no branch label (want ota)",
            "circulation-ota: kitsuki_bus_consumer_pending has no service label",
            "circulation-ota: kitsuki_outbox_published_total has no branch label (want ota)",
        ]
    );
    assert!(
        unlabelled(page, "gateway", None).len() == 1,
        "only the pending gauge"
    );
}

/// What [`every_metric_of_the_dashboards_and_alerts_is_exported_by_a_running_system`] would
/// report, shown on a made-up page: it fails on a name the code does not export.
#[test]
fn a_panel_with_a_metric_the_code_does_not_export_is_caught() {
    let mut exported = Exported::default();
    exported.add(
        "# TYPE kitsuki_requests_total counter\n\
         kitsuki_requests_total{service=\"gateway\",route=\"/\",status=\"200\",code=\"ok\"} 3\n\
         # TYPE kitsuki_request_duration_seconds histogram\n\
         kitsuki_request_duration_seconds_bucket{service=\"gateway\",route=\"/\",le=\"0.1\"} 3\n",
    );
    let used = |expr: &str| -> BTreeMap<Selector, BTreeSet<String>> {
        selectors(expr)
            .into_iter()
            .map(|s| (s, BTreeSet::from(["test".to_string()])))
            .collect()
    };
    assert!(
        missing(
            &exported,
            &used(
                "histogram_quantile(0.9, sum by (le) (rate(kitsuki_request_duration_seconds_bucket[5m]))) > 0 and up == 1"
            )
        )
        .is_empty()
    );
    let m = missing(
        &exported,
        &used("sum(rate(kitsuki_requests_total[5m])) + sum(kitsuki_made_up_total)"),
    );
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].starts_with("kitsuki_made_up_total"));
    let m = missing(
        &exported,
        &used("sum(rate(kitsuki_requests_total{branch=\"$branch\"}[5m]))"),
    );
    assert_eq!(m.len(), 1, "a label the metric does not have: {m:?}");
    // Histogram suffixes only on a histogram.
    assert!(!exported.exports("kitsuki_requests_total_count"));
    assert!(exported.exports("kitsuki_request_duration_seconds_count"));
}

#[test]
fn the_scanner_takes_metric_names_only() {
    let names = |e: &str| -> Vec<String> { selectors(e).into_iter().map(|s| s.name).collect() };
    assert_eq!(
        names(
            "histogram_quantile(0.95, sum by (service, le) (rate(kitsuki_request_duration_seconds_bucket{route!=\"/metrics\"}[$__rate_interval])))"
        ),
        ["kitsuki_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            "up * on (instance) group_left (service) max by (instance, service) (kitsuki_build_info offset 10m) == 0"
        ),
        ["up", "kitsuki_build_info"]
    );
    assert_eq!(
        names("absent(kitsuki_build_info{service=\"circulation\", branch=\"ota\"}) or vector(0)"),
        ["kitsuki_build_info"]
    );
    assert_eq!(
        names("sum without (a) (x) / ignoring(b) sum(y{c=~\"x(y)\"}) > bool 3e2"),
        ["x", "y"]
    );
    let s = &selectors("rate(kitsuki_mail_sent_total{branch=\"$branch\", template!~'a,b'}[5m])")[0];
    assert_eq!(
        s.labels,
        BTreeSet::from(["branch".to_string(), "template".to_string()])
    );
}

#[test]
fn the_dashboards_are_json_and_the_branch_dashboard_has_the_branch_variable() {
    let all = dashboards();
    let names: Vec<&str> = all.iter().map(|(f, _)| f.as_str()).collect();
    assert!(names.contains(&"overview.json") && names.contains(&"branch.json"));
    let mut uids = BTreeSet::new();
    for (file, d) in &all {
        assert!(d["title"].is_string(), "{file}: no title");
        assert!(
            uids.insert(d["uid"].as_str().unwrap().to_string()),
            "{file}: uid"
        );
        let exprs = dashboard_exprs(d);
        assert!(!exprs.is_empty(), "{file}: no queries");
        for e in &exprs {
            assert!(!selectors(e).is_empty(), "{file}: {e} names no metric");
        }
    }
    let (_, branch) = all.iter().find(|(f, _)| f == "branch.json").unwrap();
    let vars = branch["templating"]["list"].as_array().unwrap();
    let var = vars
        .iter()
        .find(|v| v["name"] == "branch")
        .expect("a `branch` variable");
    let options: BTreeSet<&str> = var["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    assert_eq!(options, BTreeSet::from(BRANCHES));
    // Every panel of a branch's own figures is filtered by it.
    for e in dashboard_exprs(branch) {
        if e.contains("kitsuki_circulation_") || e.contains("kitsuki_mail_") {
            assert!(
                e.contains("branch=\"$branch\""),
                "not filtered by branch: {e}"
            );
        }
    }
}

#[test]
fn every_alert_has_an_expression_a_summary_and_a_description() {
    let alerts = alerts();
    let names: BTreeSet<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    for wanted in [
        "KitsukiHighErrorRate",
        "KitsukiConsumerLagging",
        "KitsukiMailsFailing",
        "KitsukiReadyMailNotSent",
        "KitsukiBranchInstanceDown",
    ] {
        assert!(names.contains(wanted), "no alert {wanted}: {names:?}");
    }
    for a in &alerts {
        assert!(!a.expr.trim().is_empty(), "{}: no expr", a.name);
        assert!(
            !selectors(&a.expr).is_empty(),
            "{}: names no metric",
            a.name
        );
        assert!(!a.summary.trim().is_empty(), "{}: no summary", a.name);
        assert!(
            !a.description.trim().is_empty(),
            "{}: no description",
            a.name
        );
    }
    // The branch-down alert covers every branch.
    let down = alerts
        .iter()
        .find(|a| a.name == "KitsukiBranchInstanceDown")
        .unwrap();
    for b in BRANCHES {
        assert!(down.expr.contains(&format!("branch=\"{b}\"")), "{b}");
    }
}
