//! The whole recipe for an ordinary client (the order service asking the catalog for
//! prices): each attempt passes the breaker and runs under a timeout; failures the
//! caller calls retryable, and timeouts, are retried after a jittered backoff, as long
//! as `max_retries` and the retry budget allow. The gateway's proxy, which streams
//! bodies, uses the pieces directly instead.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::{Backoff, BackoffSettings};
use crate::breaker::{BreakerSettings, CircuitBreaker, Rejected};
use crate::budget::{BudgetSettings, RetryBudget};

/// Everything a [`Resilient`] client needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceSettings {
    /// The limit on each attempt, not on the call with its retries (2 000).
    pub timeout_ms: u64,
    /// Attempts after the first, at most (2).
    pub max_retries: u32,
    /// The wait before each retry.
    pub backoff: BackoffSettings,
    /// When to stop calling a failing upstream.
    pub breaker: BreakerSettings,
    /// How many retries all calls together may add.
    pub budget: BudgetSettings,
}

impl Default for ResilienceSettings {
    fn default() -> Self {
        Self {
            timeout_ms: 2_000,
            max_retries: 2,
            backoff: BackoffSettings::default(),
            breaker: BreakerSettings::default(),
            budget: BudgetSettings::default(),
        }
    }
}

impl ResilienceSettings {
    /// The most retries per call that `check` accepts; beyond it a call is a loop.
    pub const MAX_RETRIES: u32 = 10;

    /// Refuses values the client cannot work with, naming the field.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.timeout_ms == 0 {
            anyhow::bail!("timeout_ms must be at least 1");
        }
        if self.max_retries > Self::MAX_RETRIES {
            anyhow::bail!(
                "max_retries must be at most {}, not {}",
                Self::MAX_RETRIES,
                self.max_retries
            );
        }
        self.backoff.check()?;
        self.breaker.check()?;
        self.budget.check()
    }
}

/// What the caller makes of one attempt's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The upstream did its job, even if the answer is an error for the caller (a 404
    /// or 422 is the upstream working): counts as a success and is not retried.
    Success,
    /// The upstream failed (5xx, connection refused or reset): counts against the
    /// breaker, and is retried if `retryable` (an idempotent request, a 503).
    Failure {
        /// Whether trying again could help and is safe.
        retryable: bool,
    },
}

/// Why [`Resilient::call`] gave up.
#[derive(Debug, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker is open (from the start, or it opened between attempts); no
    /// attempt was made this time.
    Open {
        /// When the breaker will let a probe through.
        retry_after: Duration,
    },
    /// The last attempt did not finish within the attempt timeout.
    Timeout,
    /// The last attempt's own error.
    Failed(E),
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { retry_after } => Rejected {
                retry_after: *retry_after,
            }
            .fmt(f),
            Self::Timeout => f.write_str("the call timed out"),
            // Transparent: the caller's error already says what failed.
            Self::Failed(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Failed(error) => error.source(),
            Self::Open { .. } | Self::Timeout => None,
        }
    }
}

/// A client's breaker, budget and retry policy; cheap to clone (clones share the
/// breaker and the budget).
#[derive(Debug, Clone)]
pub struct Resilient {
    /// Labels logs, and the breaker's and the budget's metrics.
    pub name: String,
    /// Shared with clones; open, it fails calls before any attempt.
    pub breaker: CircuitBreaker,
    /// Shared with clones; spent, it stops retries.
    pub budget: RetryBudget,
    /// The wait before each retry.
    pub backoff: Backoff,
    /// Attempts after the first, at most.
    pub max_retries: u32,
    /// The limit on each attempt.
    pub attempt_timeout: Duration,
}

impl Resilient {
    /// A fresh breaker and budget named `name` (the upstream), from checked settings.
    pub fn new(name: impl Into<String>, settings: &ResilienceSettings) -> Self {
        let name = name.into();
        Self {
            breaker: CircuitBreaker::new(name.clone(), settings.breaker.clone()),
            budget: RetryBudget::new(name.clone(), &settings.budget),
            backoff: Backoff::new(&settings.backoff),
            max_retries: settings.max_retries,
            attempt_timeout: Duration::from_millis(settings.timeout_ms),
            name,
        }
    }

    /// Runs `op` with the breaker, timeout and retries; `classify` judges each
    /// attempt's result. The value returned is the last attempt's own result (an `Ok`
    /// judged a failure included, once retrying stops), or why no result came.
    pub async fn call<T, E, F, Fut>(
        &self,
        mut op: F,
        classify: impl Fn(&Result<T, E>) -> Verdict,
    ) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.budget.record_request();
        let mut retry = 0;
        loop {
            let permit = self
                .breaker
                .try_acquire()
                .map_err(|Rejected { retry_after }| CallError::Open { retry_after })?;
            let (outcome, retryable) = match tokio::time::timeout(self.attempt_timeout, op()).await
            {
                Err(_elapsed) => {
                    permit.failure();
                    (Err(CallError::Timeout), true)
                }
                Ok(result) => {
                    let verdict = classify(&result);
                    let retryable = match verdict {
                        Verdict::Success => {
                            permit.success();
                            false
                        }
                        Verdict::Failure { retryable } => {
                            permit.failure();
                            retryable
                        }
                    };
                    (result.map_err(CallError::Failed), retryable)
                }
            };
            // The budget is asked last: a retry that is not going to happen must not
            // spend it.
            if !retryable || retry >= self.max_retries || !self.budget.try_retry() {
                return outcome;
            }
            let delay = self.backoff.delay(retry);
            tracing::debug!(client = %self.name, retry = retry + 1, ?delay, "retrying");
            drop(outcome);
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::time::Instant;

    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Upstream {
        Unavailable,
        NotFound,
    }

    impl fmt::Display for Upstream {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "upstream said {self:?}")
        }
    }

    impl std::error::Error for Upstream {}

    fn classify(result: &Result<u32, Upstream>) -> Verdict {
        match result {
            Ok(_) | Err(Upstream::NotFound) => Verdict::Success,
            Err(Upstream::Unavailable) => Verdict::Failure { retryable: true },
        }
    }

    fn client() -> Resilient {
        Resilient::new("catalog", &ResilienceSettings::default())
    }

    /// An operation that answers from `script` in turn (the last answer repeats) and
    /// counts its calls.
    fn scripted(
        script: Vec<Result<u32, Upstream>>,
    ) -> (
        Arc<AtomicU32>,
        impl FnMut() -> std::future::Ready<Result<u32, Upstream>>,
    ) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&calls);
        let op = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
            let answer = match script.get(n.min(script.len() - 1)) {
                Some(Ok(value)) => Ok(*value),
                Some(Err(Upstream::NotFound)) => Err(Upstream::NotFound),
                _ => Err(Upstream::Unavailable),
            };
            std::future::ready(answer)
        };
        (calls, op)
    }

    #[tokio::test(start_paused = true)]
    async fn a_retryable_failure_is_retried_until_it_succeeds() {
        let (calls, op) = scripted(vec![Err(Upstream::Unavailable), Ok(7)]);
        let result = client().call(op, classify).await;
        assert_eq!(result, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_waits_no_longer_than_the_backoff_ceiling() {
        let client = client();
        let (_, op) = scripted(vec![Err(Upstream::Unavailable), Ok(7)]);
        let started = Instant::now();
        client.call(op, classify).await.unwrap();
        assert!(started.elapsed() <= client.backoff.ceiling(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_retryable_failure_is_not_retried() {
        let (calls, op) = scripted(vec![Err(Upstream::Unavailable), Ok(7)]);
        let result = client()
            .call(op, |_| Verdict::Failure { retryable: false })
            .await;
        assert_eq!(result, Err(CallError::Failed(Upstream::Unavailable)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_judged_a_success_is_returned_and_keeps_the_breaker_closed() {
        let client = client();
        let (calls, mut op) = scripted(vec![Err(Upstream::NotFound)]);
        for _ in 0..20 {
            let result = client.call(&mut op, classify).await;
            assert_eq!(result, Err(CallError::Failed(Upstream::NotFound)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 20);
        assert_eq!(client.breaker.state(), crate::BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_max_retries() {
        let (calls, op) = scripted(vec![Err(Upstream::Unavailable)]);
        let result = client().call(op, classify).await;
        assert_eq!(result, Err(CallError::Failed(Upstream::Unavailable)));
        assert_eq!(calls.load(Ordering::SeqCst), 1 + 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ok_judged_a_failure_is_returned_as_is_once_retries_run_out() {
        let (calls, op) = scripted(vec![Ok(503)]);
        let result = client()
            .call(op, |_| Verdict::Failure { retryable: true })
            .await;
        assert_eq!(result, Ok(503));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_is_made_once_the_budget_is_spent() {
        let settings = ResilienceSettings {
            budget: BudgetSettings {
                ratio: 0.0,
                min_per_second: 0,
                ..Default::default()
            },
            ..Default::default()
        };
        let (calls, op) = scripted(vec![Err(Upstream::Unavailable)]);
        let result = Resilient::new("catalog", &settings)
            .call(op, classify)
            .await;
        assert_eq!(result, Err(CallError::Failed(Upstream::Unavailable)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_outlives_the_timeout_is_abandoned_and_retried() {
        let client = client();
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result = client
            .call(
                || {
                    let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
                    async move {
                        if first {
                            std::future::pending::<()>().await;
                        }
                        Ok::<_, Upstream>(7)
                    }
                },
                classify,
            )
            .await;
        assert_eq!(result, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
        assert!(
            elapsed <= Duration::from_secs(2) + client.backoff.ceiling(0),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_timeout_is_reported_as_a_timeout() {
        let client = client();
        let result = client
            .call(std::future::pending::<Result<u32, Upstream>>, classify)
            .await;
        assert_eq!(result, Err(CallError::Timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_fails_fast_without_calling() {
        let client = client();
        for _ in 0..5 {
            client.breaker.try_acquire().unwrap().failure();
        }
        let (calls, op) = scripted(vec![Ok(7)]);
        let started = Instant::now();

        let result = client.call(op, classify).await;

        assert_eq!(
            result,
            Err(CallError::Open {
                retry_after: Duration::from_secs(5)
            })
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_breaker_that_opens_between_attempts_ends_the_call() {
        let settings = ResilienceSettings {
            max_retries: 10,
            breaker: BreakerSettings {
                consecutive_failures: 3,
                ..Default::default()
            },
            ..Default::default()
        };
        let (calls, op) = scripted(vec![Err(Upstream::Unavailable)]);
        let result = Resilient::new("catalog", &settings)
            .call(op, classify)
            .await;
        assert!(matches!(result, Err(CallError::Open { .. })), "{result:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn errors_read_well_and_failed_is_transparent() {
        let open = CallError::<Upstream>::Open {
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(
            open.to_string(),
            "circuit breaker open, retry after 1500 ms"
        );
        assert_eq!(
            CallError::<Upstream>::Timeout.to_string(),
            "the call timed out"
        );
        let failed = CallError::Failed(Upstream::Unavailable);
        assert_eq!(failed.to_string(), "upstream said Unavailable");
        let _: &dyn std::error::Error = &failed;
    }

    #[test]
    fn check_names_the_bad_field_including_nested_ones() {
        let bad = [
            (
                ResilienceSettings {
                    timeout_ms: 0,
                    ..Default::default()
                },
                "timeout_ms",
            ),
            (
                ResilienceSettings {
                    max_retries: 11,
                    ..Default::default()
                },
                "max_retries",
            ),
            (
                ResilienceSettings {
                    breaker: BreakerSettings {
                        open_ms: 0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "breaker.open_ms",
            ),
            (
                ResilienceSettings {
                    backoff: BackoffSettings {
                        base_ms: 0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "backoff.base_ms",
            ),
            (
                ResilienceSettings {
                    budget: BudgetSettings {
                        ratio: 2.0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "budget.ratio",
            ),
        ];
        for (settings, field) in bad {
            let error = settings.check().unwrap_err().to_string();
            assert!(error.contains(field), "{error:?} should name {field}");
        }
        assert!(ResilienceSettings::default().check().is_ok());
    }
}
