//! Where searches run: on tokio's blocking threads, at most one per core at a time.
//!
//! A search is a few milliseconds of pure CPU in tantivy. On an async worker it would stall
//! every other request of that worker (gRPC, event consumers, the relay) for as long; on
//! an unbounded number of blocking threads, sixty-four concurrent searches on two cores
//! would all be slowed sixty-four-fold, and none would finish sooner. So each search takes
//! a permit of a semaphore with as many permits as the process has cores (tokio's
//! semaphore is fair: waiting searches start in arrival order), then runs on
//! `spawn_blocking`. One pool per process: the cores are the process's, whatever number of
//! [`Catalog`](crate::Catalog)s (tests open many) share them.

use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

/// Permits: one per core the process may use (at least one).
static PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(cores())));

/// The number of searches that may run at once.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Why a job given to the pool gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("the search pool is closed")]
    Closed,
    #[error("a search panicked or was cancelled: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs `job` on a blocking thread once a core is free, and returns its result.
///
/// Dropping the returned future before the job started gives its place up; once started,
/// the job runs to its end (a search cannot be interrupted) and keeps its core until then:
/// the permit goes with the job, not with the future.
pub async fn run<T, F>(job: F) -> Result<T, PoolError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let permit = Arc::clone(&PERMITS)
        .acquire_owned()
        .await
        .map_err(|_| PoolError::Closed)?;
    let result = tokio::task::spawn_blocking(move || {
        let _core = permit;
        job()
    })
    .await;
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_jobs_run_at_once_than_there_are_cores() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..cores() * 4 + 3).map(|_| {
            let running = Arc::clone(&running);
            let most = Arc::clone(&most);
            run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Long enough for the others to pile up behind the permits.
                std::thread::sleep(std::time::Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        for result in futures::future::join_all(jobs).await {
            result.unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            most >= 1 && most <= cores(),
            "{most} at once on {} cores",
            cores()
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_not_a_lost_permit() {
        for _ in 0..cores() + 1 {
            let err = run(|| panic!("search bug")).await.unwrap_err();
            assert!(matches!(err, PoolError::Join(_)));
        }
        assert_eq!(run(|| 7).await.unwrap(), 7);
    }
}
