//! Issue 8, "a restart of one process is invisible to a patron": the gateway sends again
//! what is safe to send again (reads, and calls that never reached the peer) within a
//! short budget (`services/platform/src/grpc_retry.rs`), so clients looping reads through
//! it while a peer process is stopped (SIGTERM) and started again on the same port get no
//! error at all.
//!
//! The whole system runs as separate processes ([`common::system`]). Four clients loop
//! desk reads at Yamaga (`GET /api/v1/branches/yamaga/hold-shelf` and `…/transits`: a
//! staff session check at patron-account, then a list at Yamaga's circulation instance)
//! while that instance is restarted; then the same while patron-account is restarted.
//! Every answer must be 200.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::system::{Api, System, exit_status, sigterm};
use common::wait_ready;

/// What a role gets between SIGTERM and SIGKILL in k8s/base.
const GRACE: Duration = Duration::from_secs(25);

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    errors: std::sync::Mutex<Vec<String>>,
}

/// Loops reads until `stop`, counting what it was answered.
async fn reader(api: Arc<Api>, staff: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let paths = [
        "/api/v1/branches/yamaga/hold-shelf",
        "/api/v1/branches/yamaga/transits",
    ];
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let path = paths[n % paths.len()];
        n += 1;
        let sent = Instant::now();
        let answer = api
            .http
            .get(format!("{}{path}", api.base))
            .bearer_auth(&staff)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().as_u16() == 200 => {
                tally.ok.fetch_add(1, Ordering::SeqCst);
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tally.errors.lock().unwrap().push(format!(
                    "{path}: {status} after {:?}: {body}",
                    sent.elapsed()
                ));
            }
            Err(e) => tally
                .errors
                .lock()
                .unwrap()
                .push(format!("{path}: {e} after {:?}", sent.elapsed())),
        }
    }
}

/// Four readers looping reads until their stop is set.
struct Readers {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Readers {
    async fn start(base: &str, staff: &str) -> Readers {
        let api = Arc::new(Api {
            http: reqwest::Client::new(),
            base: base.to_string(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let tasks = (0..4)
            .map(|_| {
                tokio::spawn(reader(
                    api.clone(),
                    staff.to_string(),
                    stop.clone(),
                    tally.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(tally.ok.load(Ordering::SeqCst) > 0, "the readers run");
        Readers { stop, tally, tasks }
    }

    /// Lets them run a little longer, stops them, and answers what they were answered.
    async fn finish(self) -> (usize, Vec<String>) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        let errors = self.tally.errors.lock().unwrap().clone();
        (self.tally.ok.load(Ordering::SeqCst), errors)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_through_the_gateway_see_no_error_while_a_peer_restarts() {
    let mut sys = System::start("restart-invisible").await;
    let staff = sys.staff().await;

    let readers = Readers::start(&sys.api.base, &staff).await;
    let addr = sys.circulation_of("yamaga").addr().to_string();
    let signalled = Instant::now();
    sigterm(sys.circulation_of("yamaga"));
    let status = exit_status(sys.circulation_of("yamaga"), GRACE).await;
    assert!(
        status.success(),
        "circulation yamaga on SIGTERM: {status:?}"
    );
    let exited = signalled.elapsed();
    let restarted = sys.start_circulation("yamaga", &addr);
    *sys.circulation_of("yamaga") = restarted;
    wait_ready(&sys.api.http, &format!("http://{addr}")).await;
    eprintln!(
        "circulation yamaga exited {exited:?} after SIGTERM, back after {:?}",
        signalled.elapsed()
    );
    let (ok, errors) = readers.finish().await;
    eprintln!(
        "circulation restart: {ok} reads answered 200, {} errors",
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "reads failed across the restart: {errors:#?}"
    );
}
