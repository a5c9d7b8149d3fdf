//! Background tasks under supervision: the outbox relay, the consumers, periodic
//! housekeeping. A task that fails, panics or ends by itself is restarted with
//! exponential backoff, and while it is down `/readyz` says not ready (check `tasks`),
//! so an orchestrator sees the problem instead of a silently dead relay and a filling
//! outbox.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shop_http::{CheckFuture, ReadinessCheck};
use tokio::sync::watch;

pub const TASK_RESTARTS: &str = "service_task_restarts_total";

/// The future of one run of a task.
pub type TaskFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Starts one run of a task; it should return once `Shutdown` fires.
pub type TaskFn = Arc<dyn Fn(Shutdown) -> TaskFuture + Send + Sync>;

/// Fires once, when the service stops. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the sender that fires it.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Resolves when the service stops (at once if it already has).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

/// Which tasks are down, and why (for the log; probes only see "unavailable").
#[derive(Clone, Default)]
pub struct TaskHealth(Arc<Mutex<BTreeMap<String, String>>>);

impl TaskHealth {
    fn up(&self, task: &str) {
        self.lock().remove(task);
    }

    fn down(&self, task: &str, reason: String) {
        self.lock().insert(task.to_owned(), reason);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ReadinessCheck for TaskHealth {
    fn name(&self) -> &'static str {
        "tasks"
    }

    fn check(&self) -> CheckFuture<'_> {
        let down = self.lock().clone();
        Box::pin(async move {
            if down.is_empty() {
                Ok(())
            } else {
                let list: Vec<String> = down.iter().map(|(t, why)| format!("{t}: {why}")).collect();
                Err(format!("down: {}", list.join("; ")))
            }
        })
    }
}

/// Runs `task` until `shutdown`, restarting it after every failure.
pub(crate) async fn supervise(name: String, task: TaskFn, health: TaskHealth, shutdown: Shutdown) {
    // At 0 from the start, so `increase()` over it works before the first restart.
    metrics::counter!(TASK_RESTARTS, "task" => name.clone()).increment(0);
    let mut failures = 0u32;
    loop {
        health.up(&name);
        let started = Instant::now();
        // Its own tokio task, so a panic is caught as a JoinError instead of
        // unwinding through the supervisor.
        let outcome = tokio::spawn(task(shutdown.clone())).await;
        if shutdown.is_stopped() {
            if let Ok(Err(e)) | Err(e) = outcome.map_err(anyhow::Error::from) {
                tracing::warn!(task = %name, error = format!("{e:#}"), "background task failed while stopping");
            }
            return;
        }
        let reason = match outcome {
            Ok(Ok(())) => "ended by itself".to_owned(),
            Ok(Err(e)) => format!("{e:#}"),
            Err(e) if e.is_panic() => "panicked".to_owned(),
            Err(e) => e.to_string(),
        };
        // A task that ran for a while before failing starts its backoff afresh.
        if started.elapsed() > Duration::from_secs(60) {
            failures = 0;
        }
        failures += 1;
        let delay = restart_delay(failures);
        tracing::error!(
            task = %name,
            error = %reason,
            restart_in_ms = delay.as_millis() as u64,
            "background task is down; restarting"
        );
        metrics::counter!(TASK_RESTARTS, "task" => name.clone()).increment(1);
        health.down(&name, reason);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.wait() => return,
        }
    }
}

/// Runs `job` every `interval` until `shutdown`. A failed run is logged and the next
/// one comes on schedule: housekeeping that fails once must not make the service
/// unready.
pub(crate) fn periodic<F, Fut>(name: String, interval: Duration, job: F) -> TaskFn
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let job = Arc::new(job);
    Arc::new(move |shutdown: Shutdown| {
        let job = job.clone();
        let name = name.clone();
        Box::pin(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = shutdown.wait() => return Ok(()),
                }
                if let Err(e) = job().await {
                    tracing::warn!(task = %name, error = format!("{e:#}"), "periodic task failed; next run on schedule");
                }
            }
        })
    })
}

/// 1 s, 2 s, 4 s ... capped at 30 s.
fn restart_delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(5);
    Duration::from_secs(1 << exp).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use shop_http::Readiness;

    use super::*;

    #[test]
    fn restarts_back_off_up_to_a_cap() {
        assert_eq!(restart_delay(1), Duration::from_secs(1));
        assert_eq!(restart_delay(3), Duration::from_secs(4));
        assert_eq!(restart_delay(40), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_task_is_restarted_and_reported_down_meanwhile() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        // Fails on its first run, panics on its second, then runs until stopped.
        let task: TaskFn = Arc::new(move |shutdown: Shutdown| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match run {
                    0 => anyhow::bail!("the listener connection was lost"),
                    1 => panic!("a bug"),
                    _ => {
                        shutdown.wait().await;
                        Ok(())
                    }
                }
            })
        });
        let health = TaskHealth::default();
        let readiness = Readiness::new().with(health.clone());
        let (stop, shutdown) = Shutdown::new();
        let supervisor = tokio::spawn(supervise("relay".into(), task, health.clone(), shutdown));

        // After the first failure: down, with the reason kept for the log only.
        while runs.load(Ordering::SeqCst) < 1 || health.lock().is_empty() {
            tokio::task::yield_now().await;
        }
        let report = readiness.report().await;
        assert_eq!(report.status, "not ready");
        assert_eq!(report.checks["tasks"], "unavailable");

        // Time passes: it is restarted (and fails again, then runs for good).
        tokio::time::advance(Duration::from_secs(1)).await;
        while runs.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        while runs.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(readiness.report().await.status, "ready");

        stop.send(true).unwrap();
        supervisor.await.unwrap();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "not restarted after a clean stop"
        );
    }
}
