//! Graceful shutdown: one signal shared by every task of a process. SIGTERM or ctrl-c
//! triggers it; servers stop accepting, finish what is in flight, and background loops
//! (outbox relay, consumers, jobs) end after their current step.
//!
//! A process ends when its `main` returns, and the runtime then drops every task that is
//! still running wherever it stands: "after their current step" only holds if `main` waits
//! for them. So the background tasks of a role are handed to [`Shutdown::track`], and the
//! server ([`crate::server::serve`]), once its requests are drained, waits for them with
//! [`Shutdown::finish`] before it returns.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A cloneable shutdown signal.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
    /// Background tasks to wait for before the process exits.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            tx: Arc::new(tx),
            rx,
            tasks: Arc::default(),
        }
    }

    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the shutdown has been triggered.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means every sender is gone, which also means "stop".
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Keeps background tasks that end on this shutdown (they watch [`Shutdown::wait`]), so
    /// that [`Shutdown::finish`] can wait for them.
    pub fn track(&self, tasks: impl IntoIterator<Item = JoinHandle<()>>) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(tasks);
    }

    /// Waits until every tracked task has ended, at most `within`; true when all did. A
    /// task still running then is left to be dropped with the runtime: its work is of the
    /// kind that is taken up again after a restart (an unmarked outbox row, an unacked
    /// event, a mail whose lease runs out), only later and possibly twice.
    pub async fn finish(&self, within: Duration) -> bool {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let count = tasks.len();
        let all = futures::future::join_all(tasks);
        match tokio::time::timeout(within, all).await {
            Ok(_) => true,
            Err(_) => {
                tracing::warn!(
                    tasks = count,
                    within_ms = within.as_millis() as u64,
                    "background tasks still running at the end of the shutdown; leaving them"
                );
                false
            }
        }
    }

    /// Triggers this shutdown on SIGTERM or ctrl-c (spawns a task).
    pub fn on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received, draining");
            this.trigger();
        });
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_returns_after_trigger_for_every_clone() {
        let s = Shutdown::new();
        let c = s.clone();
        let waiter = tokio::spawn(async move { c.wait().await });
        s.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(s.is_triggered());
    }

    #[tokio::test]
    async fn finish_waits_for_the_tracked_tasks_to_end_their_step() {
        let s = Shutdown::new();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let c = s.clone();
        s.track([tokio::spawn(async move {
            c.wait().await;
            // The step in progress when the signal came: it ends, it is not dropped.
            tokio::time::sleep(Duration::from_millis(50)).await;
            done_tx.send(()).unwrap();
        })]);
        s.trigger();
        assert!(s.finish(Duration::from_secs(10)).await);
        assert!(done_rx.try_recv().is_ok(), "the task finished its step");
        // Nothing left to wait for the second time.
        assert!(s.finish(Duration::ZERO).await);
    }

    #[tokio::test]
    async fn finish_gives_up_on_a_task_that_does_not_stop() {
        let s = Shutdown::new();
        s.track([tokio::spawn(std::future::pending::<()>())]);
        s.trigger();
        assert!(!s.finish(Duration::from_millis(50)).await);
    }
}
