//! A retry budget (the Finagle idea, also in Envoy and gRPC): retries may add at most
//! `ratio` of the original requests seen in the last `window_ms`, plus a small floor of
//! `min_per_second` retries that is always there, so that a quiet client can still
//! retry its rare failure. Retries per request alone (`max_retries`) are not enough:
//! when an upstream is overloaded every request fails, and three retries each would
//! quadruple the load on it exactly when it can least take it. With a budget the extra
//! load stays near `ratio` whatever happens.
//!
//! One budget per upstream (or per client), shared by clones. Each call takes a short
//! lock around a few additions; it runs on every proxied request.

use std::ops::Add;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::window::Window;

const EXHAUSTED: &str = "retry_budget_exhausted_total";

/// How many retries the budget allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetSettings {
    /// Retries allowed per original request in the window, in [0, 1] (0.2).
    pub ratio: f64,
    /// Retries allowed in any second regardless of traffic (10).
    pub min_per_second: u32,
    /// How far back requests (and the retries they paid for) are remembered (10 000).
    pub window_ms: u64,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 10,
            window_ms: 10_000,
        }
    }
}

impl BudgetSettings {
    /// Refuses values the budget cannot work with, naming the field.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.ratio) {
            anyhow::bail!("budget.ratio must be between 0 and 1, not {}", self.ratio);
        }
        if self.window_ms < 1_000 {
            anyhow::bail!(
                "budget.window_ms must be at least 1000 (a shorter window measures \
                 noise), not {}",
                self.window_ms
            );
        }
        Ok(())
    }
}

/// Shared by clones; see the module documentation.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    ratio: f64,
    min_per_second: u32,
    origin: Instant,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    flow: Window<Flow>,
    /// The second (counted from `origin`) that `floor_used` belongs to.
    second: u64,
    floor_used: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    requests: u64,
    /// Retries paid for by the ratio (those from the floor are counted apart).
    retries: u64,
}

impl Add for Flow {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            requests: self.requests + other.requests,
            retries: self.retries + other.retries,
        }
    }
}

impl RetryBudget {
    /// A budget with nothing recorded yet. `name` labels its metric (the upstream's
    /// name). Expects checked settings; a ratio out of [0, 1] is clamped.
    pub fn new(name: impl Into<String>, settings: &BudgetSettings) -> Self {
        let now = Instant::now();
        let ratio = if settings.ratio.is_nan() {
            0.0
        } else {
            settings.ratio.clamp(0.0, 1.0)
        };
        let window = Duration::from_millis(settings.window_ms.max(1));
        let name = name.into();
        // At 0 from the start, so `increase()` over it works before the first refusal.
        metrics::counter!(EXHAUSTED, "budget" => name.clone()).increment(0);
        Self {
            inner: Arc::new(Inner {
                name,
                ratio,
                min_per_second: settings.min_per_second,
                origin: now,
                state: Mutex::new(State {
                    flow: Window::new(window, now),
                    second: 0,
                    floor_used: 0,
                }),
            }),
        }
    }

    /// Counts one original request (not a retry): it pays `ratio` of a retry.
    pub fn record_request(&self) {
        let now = Instant::now();
        self.inner
            .lock()
            .flow
            .update(now, |flow| flow.requests += 1);
    }

    /// Takes one retry from the budget; `false` means it is spent and the caller must
    /// not retry.
    pub fn try_retry(&self) -> bool {
        let now = Instant::now();
        let inner = &self.inner;
        let mut state = inner.lock();
        let Flow { requests, retries } = state.flow.total(now);
        if (retries + 1) as f64 <= inner.ratio * requests as f64 {
            state.flow.update(now, |flow| flow.retries += 1);
            return true;
        }
        let second = now.saturating_duration_since(inner.origin).as_secs();
        if second != state.second {
            state.second = second;
            state.floor_used = 0;
        }
        if state.floor_used < inner.min_per_second {
            state.floor_used += 1;
            return true;
        }
        drop(state);
        metrics::counter!(EXHAUSTED, "budget" => inner.name.clone()).increment(1);
        tracing::debug!(budget = %inner.name, "retry budget spent, not retrying");
        false
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Counters changed one addition at a time stay consistent after a panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> RetryBudget {
        RetryBudget::new("test", &BudgetSettings::default())
    }

    fn retries_allowed(budget: &RetryBudget) -> u32 {
        let mut allowed = 0;
        while budget.try_retry() {
            allowed += 1;
            assert!(allowed < 1_000_000, "the budget never ran out");
        }
        allowed
    }

    #[tokio::test(start_paused = true)]
    async fn at_idle_it_allows_min_per_second_each_second() {
        let budget = budget();
        assert_eq!(retries_allowed(&budget), 10);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(retries_allowed(&budget), 0);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(retries_allowed(&budget), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn under_load_it_allows_ratio_of_the_requests_plus_the_floor() {
        let budget = budget();
        for _ in 0..1_000 {
            budget.record_request();
        }
        assert_eq!(retries_allowed(&budget), 200 + 10);

        // Later in the window: new requests pay for new retries, old ones stay spent.
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..100 {
            budget.record_request();
        }
        assert_eq!(retries_allowed(&budget), 20 + 10);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_stop_paying_for_retries_once_out_of_the_window() {
        let budget = budget();
        for _ in 0..1_000 {
            budget.record_request();
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(retries_allowed(&budget), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_budget_never_retries() {
        let budget = RetryBudget::new(
            "test",
            &BudgetSettings {
                ratio: 0.0,
                min_per_second: 0,
                ..Default::default()
            },
        );
        for _ in 0..100 {
            budget.record_request();
        }
        assert!(!budget.try_retry());
    }

    #[test]
    fn check_names_the_bad_field() {
        let bad = [
            (
                BudgetSettings {
                    ratio: -0.1,
                    ..Default::default()
                },
                "ratio",
            ),
            (
                BudgetSettings {
                    ratio: 1.5,
                    ..Default::default()
                },
                "ratio",
            ),
            (
                BudgetSettings {
                    ratio: f64::NAN,
                    ..Default::default()
                },
                "ratio",
            ),
            (
                BudgetSettings {
                    window_ms: 999,
                    ..Default::default()
                },
                "window_ms",
            ),
        ];
        for (settings, field) in bad {
            let error = settings.check().unwrap_err().to_string();
            assert!(error.contains(field), "{error:?} should name {field}");
        }
        assert!(BudgetSettings::default().check().is_ok());
    }
}
