//! A circuit breaker per upstream: after enough failures it stops sending calls for a
//! while (they fail fast instead of piling up on a sick upstream), then lets a few
//! probe calls through and closes again only if they succeed.
//!
//! - **Closed**: calls pass. It opens when, within the rolling window (`window_ms`), at
//!   least `min_requests` calls ended and their failure ratio reached `failure_ratio`,
//!   or when `consecutive_failures` calls failed in a row (which catches a dead
//!   upstream long before a quiet window fills up).
//! - **Open**: every [`CircuitBreaker::try_acquire`] fails fast with [`Rejected`] until
//!   `open_ms` have passed, then the breaker is half-open.
//! - **HalfOpen**: at most `half_open_probes` probe calls run at once. It closes once
//!   `half_open_probes` probes succeeded (one lucky success is not enough to trust an
//!   upstream again); any probe failure opens it for `open_ms` again.
//!
//! A caller holds a [`Permit`] for the length of one call and gives it a verdict. A
//! permit dropped without one (the caller was cancelled) counts as neither, but frees
//! its probe slot. A verdict that arrives after the breaker changed state (a slow call
//! started while closed, ending while half-open) is ignored, so it can neither close
//! nor re-open the breaker on stale evidence.
//!
//! Transitions are logged and exported: the gauge `circuit_breaker_state{breaker}`
//! (0 closed, 1 half-open, 2 open), the counters
//! `circuit_breaker_transitions_total{breaker, to}` and
//! `circuit_breaker_rejections_total{breaker}`.

use std::fmt;
use std::ops::Add;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::window::Window;

const STATE: &str = "circuit_breaker_state";
const TRANSITIONS: &str = "circuit_breaker_transitions_total";
const REJECTIONS: &str = "circuit_breaker_rejections_total";

/// When a breaker opens and how it recovers (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// The rolling window over which the failure ratio is measured (10 000).
    pub window_ms: u64,
    /// Calls that must have ended in the window before the ratio counts (10).
    pub min_requests: u32,
    /// The share of failed calls in the window that opens the breaker, in (0, 1] (0.5).
    pub failure_ratio: f64,
    /// Failures in a row that open the breaker, whatever the window says (5).
    pub consecutive_failures: u32,
    /// How long the breaker stays open before probing (5 000).
    pub open_ms: u64,
    /// Concurrent probes while half-open, and the successes that close it (3).
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            window_ms: 10_000,
            min_requests: 10,
            failure_ratio: 0.5,
            consecutive_failures: 5,
            open_ms: 5_000,
            half_open_probes: 3,
        }
    }
}

impl BreakerSettings {
    /// Refuses values the breaker cannot work with, naming the field.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.window_ms == 0 {
            anyhow::bail!("breaker.window_ms must be at least 1");
        }
        if self.min_requests == 0 {
            anyhow::bail!("breaker.min_requests must be at least 1");
        }
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            anyhow::bail!(
                "breaker.failure_ratio must be above 0 and at most 1, not {}",
                self.failure_ratio
            );
        }
        if self.consecutive_failures == 0 {
            anyhow::bail!("breaker.consecutive_failures must be at least 1");
        }
        if self.open_ms == 0 {
            anyhow::bail!("breaker.open_ms must be at least 1");
        }
        if self.half_open_probes == 0 {
            anyhow::bail!("breaker.half_open_probes must be at least 1");
        }
        Ok(())
    }
}

/// What a breaker currently does with calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls pass and their outcomes are counted.
    Closed,
    /// A few probe calls pass; their outcomes decide.
    HalfOpen,
    /// Calls are refused at once.
    Open,
}

impl BreakerState {
    /// The label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }

    fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The breaker refused a call; try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// While open: the time left until it half-opens. While half-open with every
    /// probe slot taken: one second, as the probes' verdict is not far off.
    pub retry_after: Duration,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker open, retry after {} ms",
            self.retry_after.as_millis()
        )
    }
}

impl std::error::Error for Rejected {}

/// The hint given while half-open and every probe slot is taken.
const PROBES_BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One breaker per upstream; clones share it.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    settings: BreakerSettings,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    /// Bumped on every transition; a permit from an older generation is ignored.
    generation: u64,
    outcomes: Window<Outcomes>,
    consecutive_failures: u32,
}

#[derive(Debug)]
enum Mode {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

#[derive(Debug, Clone, Copy, Default)]
struct Outcomes {
    successes: u64,
    failures: u64,
}

impl Add for Outcomes {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            successes: self.successes + other.successes,
            failures: self.failures + other.failures,
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker. `name` labels its logs and metrics (the upstream's name).
    /// Expects checked settings; zeros are raised to 1 rather than trusted.
    pub fn new(name: impl Into<String>, settings: BreakerSettings) -> Self {
        let settings = BreakerSettings {
            min_requests: settings.min_requests.max(1),
            consecutive_failures: settings.consecutive_failures.max(1),
            half_open_probes: settings.half_open_probes.max(1),
            ..settings
        };
        let name = name.into();
        let window = Duration::from_millis(settings.window_ms.max(1));
        metrics::gauge!(STATE, "breaker" => name.clone()).set(BreakerState::Closed.gauge());
        // At 0 from the start, so `increase()` over them works before the first
        // rejection or transition.
        metrics::counter!(REJECTIONS, "breaker" => name.clone()).increment(0);
        for to in [
            BreakerState::Closed,
            BreakerState::HalfOpen,
            BreakerState::Open,
        ] {
            metrics::counter!(TRANSITIONS, "breaker" => name.clone(), "to" => to.as_str())
                .increment(0);
        }
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    mode: Mode::Closed,
                    generation: 0,
                    outcomes: Window::new(window, Instant::now()),
                    consecutive_failures: 0,
                }),
                name,
                settings,
            }),
        }
    }

    /// The name given at construction.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current state (an open breaker whose time is up reports, and becomes,
    /// half-open).
    pub fn state(&self) -> BreakerState {
        let mut state = self.inner.lock();
        self.inner.expire_open(&mut state, Instant::now());
        state.mode.kind()
    }

    /// Asks to make one call: a permit to report its outcome on, or [`Rejected`] at once.
    pub fn try_acquire(&self) -> Result<Permit, Rejected> {
        let now = Instant::now();
        let mut state = self.inner.lock();
        self.inner.expire_open(&mut state, now);
        let probes = self.inner.settings.half_open_probes;
        let rejected = match &mut state.mode {
            Mode::Closed => None,
            Mode::Open { until } => Some(until.saturating_duration_since(now)),
            Mode::HalfOpen { in_flight, .. } if *in_flight < probes => {
                *in_flight += 1;
                None
            }
            Mode::HalfOpen { .. } => Some(PROBES_BUSY_RETRY_AFTER),
        };
        if let Some(retry_after) = rejected {
            drop(state);
            metrics::counter!(REJECTIONS, "breaker" => self.inner.name.clone()).increment(1);
            return Err(Rejected { retry_after });
        }
        Ok(Permit {
            breaker: Arc::clone(&self.inner),
            generation: state.generation,
            probe: matches!(state.mode, Mode::HalfOpen { .. }),
            done: false,
        })
    }
}

impl Mode {
    fn kind(&self) -> BreakerState {
        match self {
            Self::Closed => BreakerState::Closed,
            Self::Open { .. } => BreakerState::Open,
            Self::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// The verdict a permit ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Success,
    Failure,
    /// Dropped without a verdict: only frees what the permit held.
    Abandoned,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few counters updated in one step each; a panic elsewhere
        // while holding the lock cannot leave it half-changed, so keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn expire_open(&self, state: &mut State, now: Instant) {
        if let Mode::Open { until } = state.mode
            && now >= until
        {
            let probing = Mode::HalfOpen {
                in_flight: 0,
                successes: 0,
            };
            self.transition(state, probing);
        }
    }

    fn finish(&self, generation: u64, probe: bool, verdict: Verdict) {
        let now = Instant::now();
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        // Within one generation, a probe permit means half-open and any other closed.
        if probe {
            self.finish_probe(&mut state, verdict, now);
        } else {
            self.finish_closed(&mut state, verdict, now);
        }
    }

    fn finish_probe(&self, state: &mut State, verdict: Verdict, now: Instant) {
        let Mode::HalfOpen {
            in_flight,
            successes,
        } = &mut state.mode
        else {
            return;
        };
        *in_flight = in_flight.saturating_sub(1);
        match verdict {
            Verdict::Abandoned => {}
            Verdict::Success => {
                *successes += 1;
                if *successes >= self.settings.half_open_probes {
                    tracing::info!(
                        breaker = %self.name,
                        "circuit breaker closed: probes succeeded"
                    );
                    self.transition(state, Mode::Closed);
                }
            }
            Verdict::Failure => {
                tracing::warn!(
                    breaker = %self.name,
                    open_ms = self.settings.open_ms,
                    "circuit breaker re-opened: a probe failed"
                );
                self.open(state, now);
            }
        }
    }

    fn finish_closed(&self, state: &mut State, verdict: Verdict, now: Instant) {
        match verdict {
            Verdict::Abandoned => {}
            Verdict::Success => {
                state.consecutive_failures = 0;
                state.outcomes.update(now, |o| o.successes += 1);
            }
            Verdict::Failure => {
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                state.outcomes.update(now, |o| o.failures += 1);
                self.open_if_failing(state, now);
            }
        }
    }

    fn open_if_failing(&self, state: &mut State, now: Instant) {
        let settings = &self.settings;
        let Outcomes {
            successes,
            failures,
        } = state.outcomes.total(now);
        let ended = successes + failures;
        let ratio = failures as f64 / ended.max(1) as f64;
        let by_ratio = ended >= u64::from(settings.min_requests) && ratio >= settings.failure_ratio;
        let in_a_row = state.consecutive_failures >= settings.consecutive_failures;
        if by_ratio || in_a_row {
            tracing::warn!(
                breaker = %self.name,
                failures,
                calls = ended,
                consecutive = state.consecutive_failures,
                open_ms = settings.open_ms,
                "circuit breaker opened"
            );
            self.open(state, now);
        }
    }

    fn open(&self, state: &mut State, now: Instant) {
        let until = now + Duration::from_millis(self.settings.open_ms);
        self.transition(state, Mode::Open { until });
    }

    /// Switches mode and exports it. Called with the lock held so that the gauge
    /// always ends on the latest state, however transitions interleave.
    fn transition(&self, state: &mut State, to: Mode) {
        let kind = to.kind();
        if let Mode::Closed = to {
            // A fresh start: failures from before the outage must not re-open it.
            state.outcomes.clear();
            state.consecutive_failures = 0;
        }
        if kind == BreakerState::HalfOpen {
            tracing::info!(breaker = %self.name, "circuit breaker half-open: probing");
        }
        state.mode = to;
        state.generation += 1;
        metrics::gauge!(STATE, "breaker" => self.name.clone()).set(kind.gauge());
        metrics::counter!(TRANSITIONS, "breaker" => self.name.clone(), "to" => kind.as_str())
            .increment(1);
    }
}

/// Leave to make one call; end it with [`Permit::success`] or [`Permit::failure`].
/// Dropping it instead (the call was cancelled) counts as neither.
#[derive(Debug)]
#[must_use = "a permit must be given a verdict, or the outcome of the call is lost"]
pub struct Permit {
    breaker: Arc<Inner>,
    generation: u64,
    probe: bool,
    done: bool,
}

impl Permit {
    /// The call succeeded (for the breaker: the upstream is healthy; a 4xx answer is
    /// a success in this sense).
    pub fn success(mut self) {
        self.finish(Verdict::Success);
    }

    /// The call failed because of the upstream (5xx, timeout, connection refused).
    pub fn failure(mut self) {
        self.finish(Verdict::Failure);
    }

    fn finish(&mut self, verdict: Verdict) {
        if !self.done {
            self.done = true;
            self.breaker.finish(self.generation, self.probe, verdict);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.finish(Verdict::Abandoned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings::default()
    }

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new("test", settings())
    }

    fn succeed(breaker: &CircuitBreaker, times: u32) {
        for _ in 0..times {
            breaker.try_acquire().unwrap().success();
        }
    }

    fn fail(breaker: &CircuitBreaker, times: u32) {
        for _ in 0..times {
            breaker.try_acquire().unwrap().failure();
        }
    }

    /// Opens the default breaker with five failures in a row.
    fn open(breaker: &CircuitBreaker) {
        fail(breaker, 5);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn the_failure_ratio_opens_only_once_min_requests_calls_ended() {
        let breaker = breaker();
        // Alternate so that no run of failures reaches `consecutive_failures`.
        for _ in 0..4 {
            fail(&breaker, 1);
            succeed(&breaker, 1);
        }
        fail(&breaker, 1);
        // Nine calls, 5/9 failed: above the ratio, below min_requests.
        assert_eq!(breaker.state(), BreakerState::Closed);

        fail(&breaker, 1);
        // Ten calls, 6/10 failed.
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_ratio_below_the_threshold_keeps_it_closed() {
        let breaker = breaker();
        for _ in 0..20 {
            fail(&breaker, 1);
            succeed(&breaker, 2);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_it_before_min_requests() {
        let breaker = breaker();
        fail(&breaker, 4);
        assert_eq!(breaker.state(), BreakerState::Closed);
        fail(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_run_of_failures() {
        let breaker = CircuitBreaker::new(
            "test",
            BreakerSettings {
                min_requests: 1000,
                ..settings()
            },
        );
        for _ in 0..10 {
            fail(&breaker, 4);
            succeed(&breaker, 1);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn while_open_it_rejects_at_once_with_the_time_left() {
        let breaker = breaker();
        open(&breaker);
        tokio::time::advance(Duration::from_millis(1_500)).await;

        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(rejected.retry_after, Duration::from_millis(3_500));
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn after_open_ms_it_half_opens_and_allows_exactly_the_probe_count() {
        let breaker = breaker();
        open(&breaker);
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert!(breaker.try_acquire().is_err());
        tokio::time::advance(Duration::from_millis(1)).await;

        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let probes: Vec<_> = (0..3).map(|_| breaker.try_acquire().unwrap()).collect();
        let busy = breaker.try_acquire().unwrap_err();
        assert_eq!(busy.retry_after, PROBES_BUSY_RETRY_AFTER);
        assert_eq!(probes.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_failure_reopens_it_for_open_ms() {
        let breaker = breaker();
        open(&breaker);
        tokio::time::advance(Duration::from_millis(5_000)).await;

        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        first.success();
        second.failure();

        assert_eq!(breaker.state(), BreakerState::Open);
        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(rejected.retry_after, Duration::from_millis(5_000));
    }

    #[tokio::test(start_paused = true)]
    async fn it_closes_after_half_open_probes_successes_and_not_before() {
        let breaker = breaker();
        open(&breaker);
        tokio::time::advance(Duration::from_millis(5_000)).await;

        succeed(&breaker, 2);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        succeed(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Closed);
        // Closed afresh: the failures that opened it are forgotten.
        fail(&breaker, 4);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_probe_frees_its_slot_and_counts_as_nothing() {
        let breaker = breaker();
        open(&breaker);
        tokio::time::advance(Duration::from_millis(5_000)).await;

        let probes: Vec<_> = (0..3).map(|_| breaker.try_acquire().unwrap()).collect();
        assert!(breaker.try_acquire().is_err());
        drop(probes);

        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        succeed(&breaker, 3);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_permit_while_closed_counts_as_nothing() {
        let breaker = breaker();
        fail(&breaker, 4);
        drop(breaker.try_acquire().unwrap());
        drop(breaker.try_acquire().unwrap());
        // Still four in a row, not six.
        assert_eq!(breaker.state(), BreakerState::Closed);
        fail(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn old_outcomes_fall_out_of_the_window() {
        let breaker = breaker();
        for _ in 0..4 {
            fail(&breaker, 1);
            succeed(&breaker, 1);
        }
        fail(&breaker, 1);
        tokio::time::advance(Duration::from_millis(10_000)).await;
        // Had the nine old calls stayed, this would make 6 failures out of 10.
        fail(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_verdict_from_before_a_transition_is_ignored() {
        let breaker = breaker();
        let slow = breaker.try_acquire().unwrap();
        open(&breaker);
        tokio::time::advance(Duration::from_millis(5_000)).await;
        let probe = breaker.try_acquire().unwrap();

        // The slow call started while closed; its failure says nothing about now.
        slow.failure();
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        drop(probe);
    }

    #[test]
    fn permits_can_travel_between_tasks() {
        fn send_static<T: Send + 'static>() {}
        send_static::<Permit>();
        send_static::<CircuitBreaker>();
    }

    #[test]
    fn check_names_the_bad_field() {
        let bad = [
            (
                BreakerSettings {
                    window_ms: 0,
                    ..settings()
                },
                "window_ms",
            ),
            (
                BreakerSettings {
                    min_requests: 0,
                    ..settings()
                },
                "min_requests",
            ),
            (
                BreakerSettings {
                    failure_ratio: 0.0,
                    ..settings()
                },
                "failure_ratio",
            ),
            (
                BreakerSettings {
                    failure_ratio: 1.5,
                    ..settings()
                },
                "failure_ratio",
            ),
            (
                BreakerSettings {
                    failure_ratio: f64::NAN,
                    ..settings()
                },
                "failure_ratio",
            ),
            (
                BreakerSettings {
                    consecutive_failures: 0,
                    ..settings()
                },
                "consecutive_failures",
            ),
            (
                BreakerSettings {
                    open_ms: 0,
                    ..settings()
                },
                "open_ms",
            ),
            (
                BreakerSettings {
                    half_open_probes: 0,
                    ..settings()
                },
                "half_open_probes",
            ),
        ];
        for (settings, field) in bad {
            let error = settings.check().unwrap_err().to_string();
            assert!(error.contains(field), "{error:?} should name {field}");
        }
        assert!(BreakerSettings::default().check().is_ok());
    }
}
