//! The saga's metrics, beside the chassis's RED and event metrics.
//!
//! | metric | what |
//! |---|---|
//! | `orders_placed_total` | orders created (a replayed placement is not counted) |
//! | `saga_transitions_total{from,to}` | every state change of an order |
//! | `saga_duration_seconds{outcome}` | from placement to `CONFIRMED`, `DELIVERED` or `CANCELLED` (the outcome, lower case) |
//! | `saga_cancellations_total{reason}` | orders cancelled, by reason (`TIMEOUT`, `PAYMENT_DECLINED`, ...), each at 0 from the start |
//! | `orders_in_state{status}` | orders per state, counted every 15 s |

use crate::orders::{CancelReason, Status};

const PLACED: &str = "orders_placed_total";
const TRANSITIONS: &str = "saga_transitions_total";
const DURATION: &str = "saga_duration_seconds";
const IN_STATE: &str = "orders_in_state";
const CANCELLATIONS: &str = "saga_cancellations_total";

/// Every cancellation reason's counter at 0, so `increase()` works before the first.
pub fn register() {
    for reason in CancelReason::ALL {
        metrics::counter!(CANCELLATIONS, "reason" => reason.as_str()).increment(0);
    }
    metrics::counter!(PLACED).increment(0);
}

/// An order was cancelled for `reason`.
pub fn cancelled(reason: CancelReason) {
    metrics::counter!(CANCELLATIONS, "reason" => reason.as_str()).increment(1);
}

pub fn placed() {
    metrics::counter!(PLACED).increment(1);
}

/// An order moved from `from` to `to`, `age_secs` after it was placed.
pub fn transition(from: Status, to: Status, age_secs: f64) {
    metrics::counter!(TRANSITIONS, "from" => from.as_str(), "to" => to.as_str()).increment(1);
    let outcome = match to {
        Status::Confirmed => "confirmed",
        Status::Delivered => "delivered",
        Status::Cancelled => "cancelled",
        _ => return,
    };
    metrics::histogram!(DURATION, "outcome" => outcome).record(age_secs);
}

/// How many orders are in each state now; a state with none is reported as 0.
pub fn in_state(counts: &[(Status, i64)]) {
    for status in Status::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!(IN_STATE, "status" => status.as_str()).set(n as f64);
    }
}
