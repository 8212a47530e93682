//! The test clock's gRPC face (`kitsuki.platform.v1.TestClockService`), served by a role
//! only when it was started with `KITSUKI_TEST_CLOCK=1`. Moving the clock runs the jobs
//! that registered as "due jobs" (hold-shelf expiry, mail retries…), so that a test can
//! step over a week without waiting for timers.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use kitsuki_proto::testclock as pb;
use kitsuki_proto::testclock::test_clock_service_server::{
    TestClockService, TestClockServiceServer,
};
use kitsuki_proto::{ErrorCode, ServiceError};
use time::Duration;
use tonic::{Request, Response, Status};

use crate::clock::{Clock, TestClock, format_instant, parse_instant};

type Job = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// Jobs to run after the clock moved.
#[derive(Clone, Default)]
pub struct DueJobs {
    jobs: Arc<Mutex<Vec<Job>>>,
}

impl std::fmt::Debug for DueJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.jobs.lock().map(|j| j.len()).unwrap_or(0);
        f.debug_struct("DueJobs").field("jobs", &n).finish()
    }
}

impl DueJobs {
    pub fn register(&self, job: impl Fn() -> BoxFuture<'static, ()> + Send + Sync + 'static) {
        if let Ok(mut j) = self.jobs.lock() {
            j.push(Arc::new(job));
        }
    }

    pub async fn run_all(&self) {
        let jobs: Vec<Job> = self.jobs.lock().map(|j| j.clone()).unwrap_or_default();
        for job in jobs {
            job().await;
        }
    }
}

/// gRPC server of the test clock.
#[derive(Debug, Clone)]
pub struct TestClockGrpc {
    clock: Arc<TestClock>,
    jobs: DueJobs,
}

impl TestClockGrpc {
    pub fn new(clock: Arc<TestClock>, jobs: DueJobs) -> Self {
        TestClockGrpc { clock, jobs }
    }

    pub fn into_server(self) -> TestClockServiceServer<TestClockGrpc> {
        TestClockServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl TestClockService for TestClockGrpc {
    async fn r#move(
        &self,
        req: Request<pb::MoveClockRequest>,
    ) -> Result<Response<pb::ClockState>, Status> {
        let r = req.into_inner();
        if r.now.is_empty() {
            self.clock
                .advance(Duration::days(i64::from(r.advance_days)));
        } else {
            let at = parse_instant(&r.now)
                .ok_or_else(|| ServiceError::with_detail(ErrorCode::InvalidInput, "now"))?;
            if at < self.clock.now() {
                return Err(ServiceError::with_detail(
                    ErrorCode::InvalidInput,
                    "the clock only moves forward",
                )
                .into());
            }
            self.clock.set(at);
        }
        self.jobs.run_all().await;
        Ok(Response::new(pb::ClockState {
            now: format_instant(self.clock.now()),
        }))
    }

    async fn now(&self, _req: Request<pb::NowRequest>) -> Result<Response<pb::ClockState>, Status> {
        Ok(Response::new(pb::ClockState {
            now: format_instant(self.clock.now()),
        }))
    }
}
