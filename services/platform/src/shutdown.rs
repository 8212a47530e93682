//! Graceful shutdown: one signal shared by every task of a process. SIGTERM or ctrl-c
//! triggers it; servers stop accepting, finish what is in flight, and background loops
//! (consumers, jobs, the mail sender) end after their current step.
//!
//! A process ends when its `main` returns, and the runtime then drops every task that is
//! still running wherever it stands: "after their current step" only holds if `main` waits
//! for them. So the background tasks of a role are handed to [`Shutdown::track`], and the
//! server ([`crate::server::serve`]), once its requests are drained, waits for them with
//! [`Shutdown::finish`] before it returns.
//!
//! The outbox relay stops last. Requests still draining, a consumer's last event and the
//! mail sender's last mails all commit outbox rows after the signal; a relay that stopped
//! with everyone else would leave those rows until a relay runs again on that database
//! (for a single-instance role: until the process is back). So `finish` runs in two
//! phases: first the tasks of [`Shutdown::track`] end their step, then the last phase
//! begins ([`Shutdown::wait_last_phase`]) and the tasks of [`Shutdown::track_last`] — the
//! relays, which publish everything committed before they stop — are waited for within
//! [`LAST_PHASE`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The part of a [`Shutdown::finish`] kept for its last phase, when tasks were handed to
/// [`Shutdown::track_last`]: the outbox relay's drain
/// ([`crate::outbox::LAST_DRAIN`]) and a margin for the round it may be finishing.
pub const LAST_PHASE: Duration = Duration::from_secs(4);

type Tasks = Arc<Mutex<Vec<JoinHandle<()>>>>;

/// A cloneable shutdown signal, with the background tasks that end on it.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
    /// The last phase: set by [`Shutdown::finish`] once the first group has ended.
    last_tx: Arc<watch::Sender<bool>>,
    last_rx: watch::Receiver<bool>,
    /// Background tasks to wait for before the process exits.
    tasks: Tasks,
    /// Tasks that end in the last phase (the outbox relays), after `tasks`.
    last_tasks: Tasks,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        let (last_tx, last_rx) = watch::channel(false);
        Shutdown {
            tx: Arc::new(tx),
            rx,
            last_tx: Arc::new(last_tx),
            last_rx,
            tasks: Arc::default(),
            last_tasks: Arc::default(),
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

    /// Resolves once the last phase has begun: the shutdown was triggered, and every task
    /// of [`Shutdown::track`] has ended (or was given up on). What the process commits to
    /// its outbox is committed by then. Only [`Shutdown::finish`] begins it.
    pub async fn wait_last_phase(&self) {
        let mut rx = self.last_rx.clone();
        let _ = rx.wait_for(|v| *v).await;
    }

    pub fn is_last_phase(&self) -> bool {
        *self.last_rx.borrow()
    }

    /// A new shutdown, with tasks of its own, triggered when this one begins its last
    /// phase (spawns a task). For a listener whose clients are the first phase's tasks: in
    /// the all-in-one process the services' internal gRPC, which the mail sender and the
    /// gateway's draining requests still call after the signal.
    pub fn at_last_phase(&self) -> Shutdown {
        let (this, later) = (self.clone(), Shutdown::new());
        let trigger = later.clone();
        tokio::spawn(async move {
            this.wait_last_phase().await;
            trigger.trigger();
        });
        later
    }

    /// Keeps background tasks that end on this shutdown (they watch [`Shutdown::wait`]), so
    /// that [`Shutdown::finish`] can wait for them.
    pub fn track(&self, tasks: impl IntoIterator<Item = JoinHandle<()>>) {
        lock(&self.tasks).extend(tasks);
    }

    /// Keeps tasks that end in the last phase (they watch [`Shutdown::wait_last_phase`]):
    /// an outbox relay, which publishes what the other tasks commit while they stop.
    pub fn track_last(&self, tasks: impl IntoIterator<Item = JoinHandle<()>>) {
        lock(&self.last_tasks).extend(tasks);
    }

    /// Ends the shutdown within `within`; true when every tracked task ended. Triggers it
    /// (if nothing did), waits for the tasks of [`Shutdown::track`], then begins the last
    /// phase and waits for those of [`Shutdown::track_last`]. The first group gets
    /// `within` less [`LAST_PHASE`] when there is a last group, so that the relays keep
    /// their time however long the first took.
    ///
    /// A task still running at its deadline is left to be dropped with the runtime: its
    /// work is of the kind that is taken up again after a restart (an unmarked outbox row,
    /// an unacked event, a mail whose lease runs out), only later and possibly twice.
    pub async fn finish(&self, within: Duration) -> bool {
        let end = Instant::now() + within;
        self.trigger();
        let reserve = if lock(&self.last_tasks).is_empty() {
            Duration::ZERO
        } else {
            LAST_PHASE.min(within)
        };
        let first = join_by(take(&self.tasks), end - reserve, "background").await;
        let _ = self.last_tx.send(true);
        let last = join_by(take(&self.last_tasks), end, "last-phase").await;
        first && last
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

fn lock(tasks: &Tasks) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
    tasks.lock().unwrap_or_else(|e| e.into_inner())
}

fn take(tasks: &Tasks) -> Vec<JoinHandle<()>> {
    std::mem::take(&mut *lock(tasks))
}

/// Waits for `tasks` until `deadline`; true when all ended.
async fn join_by(tasks: Vec<JoinHandle<()>>, deadline: Instant, group: &str) -> bool {
    let count = tasks.len();
    match tokio::time::timeout_at(deadline, futures::future::join_all(tasks)).await {
        Ok(_) => true,
        Err(_) => {
            tracing::warn!(
                tasks = count,
                group,
                "tasks still running at the end of their part of the shutdown; leaving them"
            );
            false
        }
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

    #[tokio::test]
    async fn the_last_phase_begins_once_the_first_group_has_ended() {
        let s = Shutdown::new();
        let first_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, done) = (s.clone(), first_done.clone());
        s.track([tokio::spawn(async move {
            c.wait().await;
            // A last step that commits something after the signal.
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })]);
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let (c, done) = (s.clone(), first_done.clone());
        s.track_last([tokio::spawn(async move {
            c.wait_last_phase().await;
            seen_tx
                .send(done.load(std::sync::atomic::Ordering::SeqCst))
                .unwrap();
        })]);
        s.trigger();
        assert!(!s.is_last_phase(), "the signal alone does not begin it");
        assert!(s.finish(Duration::from_secs(10)).await);
        assert!(s.is_last_phase());
        assert_eq!(
            seen_rx.try_recv(),
            Ok(true),
            "the last task saw the first group's work done"
        );
    }

    #[tokio::test]
    async fn the_last_phase_comes_even_when_a_first_task_does_not_stop() {
        let s = Shutdown::new();
        s.track([tokio::spawn(std::future::pending::<()>())]);
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let c = s.clone();
        s.track_last([tokio::spawn(async move {
            c.wait_last_phase().await;
            seen_tx.send(()).unwrap();
        })]);
        // The first group gets what is left beside the last phase's share.
        assert!(!s.finish(LAST_PHASE + Duration::from_millis(100)).await);
        assert_eq!(seen_rx.try_recv(), Ok(()), "the last task ran");
    }

    #[tokio::test]
    async fn at_last_phase_is_triggered_by_the_last_phase_not_by_the_signal() {
        let s = Shutdown::new();
        let later = s.at_last_phase();
        let c = s.clone();
        let (step_tx, mut step_rx) = tokio::sync::mpsc::unbounded_channel();
        let l = later.clone();
        s.track([tokio::spawn(async move {
            c.wait().await;
            // A first-phase task still finds the later listener open.
            step_tx.send(l.is_triggered()).unwrap();
        })]);
        s.trigger();
        assert!(s.finish(Duration::from_secs(10)).await);
        assert_eq!(step_rx.try_recv(), Ok(false));
        tokio::time::timeout(Duration::from_secs(2), later.wait())
            .await
            .expect("triggered in the last phase");
    }
}
