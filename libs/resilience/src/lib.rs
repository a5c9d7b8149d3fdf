//! Client-side resilience, shared by the gateway's proxy and the services' REST clients:
//! what to do when an upstream is slow or failing, so that one sick service does not
//! take its callers down with it.
//!
//! - [`CircuitBreaker`]: stop calling an upstream that keeps failing, probe it after a
//!   pause, resume when it answers again.
//! - [`RetryBudget`]: retries may add only a fraction of the traffic, so that retries
//!   cannot multiply an overload.
//! - [`Backoff`]: exponential delays with full jitter, so that clients that failed
//!   together do not retry together.
//! - [`Resilient`]: the three together with a per-attempt timeout, for a client that
//!   makes ordinary request/response calls. The gateway, which streams bodies, uses the
//!   pieces on their own.
//!
//! Time comes from `tokio::time`, so everything can be tested on a paused clock.

mod backoff;
mod breaker;
mod budget;
mod call;
mod window;

pub use backoff::{Backoff, BackoffSettings};
pub use breaker::{BreakerSettings, BreakerState, CircuitBreaker, Permit, Rejected};
pub use budget::{BudgetSettings, RetryBudget};
pub use call::{CallError, ResilienceSettings, Resilient, Verdict};
