//! The desk load of `catalogue_scale`: how long the catalogue's view of a copy trails
//! circulation (issue 9: "the item-status consumer keeps up with the desk load, ≤ 1 s").
//!
//! On the running all-in-one it registers `copies` copies of imported titles (one per
//! branch per title, through the admin API, as a librarian would), a patron per
//! `LOANS_PER_PATRON` copies, and then sends desk transactions at a fixed rate for a
//! fixed time, round robin over the copies. Each copy goes round its cycle: lent at its
//! home branch (expect `on_loan`), returned at another branch (expect `in_transit`, H7),
//! returned at home (expect `available`). After each answer a watcher reads
//! `GET /api/v1/titles/{id}` every `POLL` until the copy shows the state the desk just
//! gave it; the lag is from the desk's answer to the first read that shows it (so it
//! includes up to one poll interval and one read). A copy's next transaction waits for
//! its watcher (counted when it had to), so watchers never race their own copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Branch codes of the three instances.
const BRANCHES: [&str; 3] = ["kitsuki", "yamaga", "ota"];
/// Poll interval of a watcher: the resolution of the lag.
const POLL: Duration = Duration::from_millis(25);
/// A watcher gives up after this long; the copy then counts as never caught up.
const GIVE_UP: Duration = Duration::from_secs(30);
/// Loans per patron at most (under L3's 10).
const LOANS_PER_PATRON: usize = 6;

/// What the desk load measured.
pub struct DeskFigures {
    pub copies: usize,
    pub transactions: u64,
    pub failed: u64,
    pub rate: f64,
    pub lags: Vec<Duration>,
    pub never: u64,
    pub waited: u64,
}

struct Copy {
    title_id: String,
    barcode: String,
    home: &'static str,
    away: &'static str,
    card: String,
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    staff: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        };
        let req = req.bearer_auth(&self.staff);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({"error": e.to_string()})),
        }
    }
}

/// Logs in as the bench's admin, registers the copies and patrons, runs the load.
pub async fn run(
    base: &str,
    admin_password: &str,
    title_ids: &[String],
    copies: usize,
    rate: f64,
    seconds: u64,
) -> DeskFigures {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let r = http
        .post(format!("{base}/api/v1/staff/session"))
        .json(&json!({"username": "admin", "password": admin_password}))
        .send()
        .await
        .expect("staff login");
    let v: Value = r.json().await.unwrap();
    let staff = v["token"]
        .as_str()
        .unwrap_or_else(|| panic!("staff login: {v}"))
        .to_string();
    let api = Api {
        http,
        base: base.to_string(),
        staff,
    };

    let patrons = copies.div_ceil(LOANS_PER_PATRON);
    let mut cards = Vec::with_capacity(patrons);
    for k in 0..patrons {
        let (s, v) = api
            .call(
                "POST",
                "/api/v1/branches/kitsuki/patrons",
                Some(
                    json!({"name": format!("窓口 負荷{k}"), "name_reading": "まどぐち ふか",
                    "birth_date": "1980-01-01", "id_document": "health_insurance"}),
                ),
            )
            .await;
        assert_eq!(s, 201, "register a patron: {v}");
        cards.push(v["card_number"].as_str().unwrap().to_string());
    }
    // Upper case: the catalogue keeps barcodes in upper case, and the watchers compare.
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase();
    let mut list = Vec::with_capacity(copies);
    for k in 0..copies {
        let title_id = title_ids[(k / BRANCHES.len()) % title_ids.len()].clone();
        let home = BRANCHES[k % BRANCHES.len()];
        let away = BRANCHES[(k + 1) % BRANCHES.len()];
        let barcode = format!("DESK-{run_id}-{k:04}");
        let (s, v) = api
            .call(
                "POST",
                "/api/v1/admin/items",
                Some(json!({"title_id": title_id, "barcode": barcode, "branch": home})),
            )
            .await;
        assert_eq!(s, 201, "register copy {barcode}: {v}");
        list.push(Copy {
            title_id,
            barcode,
            home,
            away,
            card: cards[k % patrons].clone(),
        });
    }
    // Each new copy's `available` reaches the catalogue by the same consumer: wait for
    // all of them before the clock starts, so the load starts from a settled state.
    for c in &list {
        let lag = watch(&api, &c.title_id, &c.barcode, "available", Instant::now()).await;
        assert!(
            lag < GIVE_UP,
            "copy {} never showed as available on its title",
            c.barcode
        );
    }

    let list = Arc::new(list);
    let lags = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let waited = Arc::new(AtomicU64::new(0));
    let mut last: Vec<Option<tokio::task::JoinHandle<()>>> = (0..copies).map(|_| None).collect();
    let mut steps = vec![0usize; copies];
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut next = started;
    let mut sent = 0u64;
    let mut k = 0usize;
    while next < until {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let copy = k % copies;
        k += 1;
        let previous = last[copy].take();
        let step = steps[copy];
        steps[copy] = (step + 1) % 3;
        sent += 1;
        let (api, list, lags, failed, waited) = (
            api.clone(),
            list.clone(),
            lags.clone(),
            failed.clone(),
            waited.clone(),
        );
        // The transaction runs in its own task, so a slow answer does not slow the rate,
        // after its copy's previous transaction and watcher.
        last[copy] = Some(tokio::spawn(async move {
            if let Some(p) = previous {
                if !p.is_finished() {
                    waited.fetch_add(1, Ordering::Relaxed);
                }
                let _ = p.await;
            }
            let c = &list[copy];
            let (path, body, expect) = match step {
                0 => (
                    format!("/api/v1/branches/{}/checkouts", c.home),
                    json!({"card_number": c.card, "barcode": c.barcode}),
                    "on_loan",
                ),
                1 => (
                    format!("/api/v1/branches/{}/checkins", c.away),
                    json!({"barcode": c.barcode}),
                    "in_transit",
                ),
                _ => (
                    format!("/api/v1/branches/{}/checkins", c.home),
                    json!({"barcode": c.barcode}),
                    "available",
                ),
            };
            let (s, v) = api.call("POST", &path, Some(body)).await;
            if !(200..300).contains(&s) {
                failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("desk {path} {}: {s} {v}", c.barcode);
                return;
            }
            let lag = watch(&api, &c.title_id, &c.barcode, expect, Instant::now()).await;
            lags.lock().unwrap().push(lag);
        }));
    }
    for h in last.into_iter().flatten() {
        let _ = h.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lags = std::mem::take(&mut *lags.lock().unwrap());
    lags.sort();
    let never = lags.iter().filter(|l| **l >= GIVE_UP).count() as u64;
    lags.retain(|l| *l < GIVE_UP);
    DeskFigures {
        copies,
        transactions: sent,
        failed: failed.load(Ordering::Relaxed),
        rate: sent as f64 / elapsed,
        lags,
        never,
        waited: waited.load(Ordering::Relaxed),
    }
}

/// Reads the title until the copy shows `expect`; the time from `since` to that read
/// ([`GIVE_UP`] when it never does).
async fn watch(api: &Api, title_id: &str, barcode: &str, expect: &str, since: Instant) -> Duration {
    loop {
        let (s, v) = api
            .call("GET", &format!("/api/v1/titles/{title_id}"), None)
            .await;
        let shown = (s == 200)
            .then(|| {
                v["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|i| i["barcode"].as_str() == Some(barcode))
                    .and_then(|i| i["status"].as_str().map(str::to_string))
            })
            .flatten();
        let lag = since.elapsed();
        if shown.as_deref() == Some(expect) {
            return lag;
        }
        if lag >= GIVE_UP {
            return GIVE_UP;
        }
        tokio::time::sleep(POLL).await;
    }
}
