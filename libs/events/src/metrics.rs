//! The event backbone's Prometheus metrics (rendered by each service's `/metrics`).

pub const PUBLISHED: &str = "events_published_total";
pub const PUBLISH_DUPLICATES: &str = "events_publish_duplicates_total";
pub const CONSUMED: &str = "events_consumed_total";
pub const RETRIED: &str = "events_retried_total";
pub const DEAD_LETTERED: &str = "events_dead_lettered_total";
pub const OUTBOX_BACKLOG: &str = "outbox_backlog";
pub const OUTBOX_OLDEST_AGE: &str = "outbox_oldest_age_seconds";
pub const OUTBOX_PARKED: &str = "outbox_parked";
pub const OUTBOX_PARKED_TOTAL: &str = "outbox_parked_total";
pub const HANDLE_LAG: &str = "events_handle_lag_seconds";
pub const WAITING_FOR_DATABASE: &str = "events_consumer_database_waits_total";

/// The relay of `schema` starts: its counters exist at 0 from now on, so a rule's
/// `increase()` works before the first rare event (a duplicate, a parked row).
pub(crate) fn relay_started(schema: &str) {
    metrics::counter!(PUBLISHED).increment(0);
    metrics::counter!(PUBLISH_DUPLICATES).increment(0);
    metrics::counter!(OUTBOX_PARKED_TOTAL, "schema" => schema.to_owned()).increment(0);
}

/// The consumer starts: its rare counters (retries, dead letters by reason, database
/// waits) exist at 0 from now on.
pub(crate) fn consumer_started(consumer: &str) {
    metrics::counter!(RETRIED, "consumer" => consumer.to_owned()).increment(0);
    for reason in ["unparseable", "unknown_type", "rejected", "exhausted"] {
        metrics::counter!(DEAD_LETTERED, "consumer" => consumer.to_owned(), "reason" => reason)
            .increment(0);
    }
    metrics::counter!(WAITING_FOR_DATABASE).increment(0);
}

pub(crate) fn published(rows: usize, duplicates: usize) {
    metrics::counter!(PUBLISHED).increment(rows as u64);
    if duplicates > 0 {
        metrics::counter!(PUBLISH_DUPLICATES).increment(duplicates as u64);
    }
}

/// Rows waiting to be published, the age of the oldest, and rows parked for good.
pub(crate) fn outbox_backlog(schema: &str, rows: i64, oldest_secs: f64, parked: i64) {
    metrics::gauge!(OUTBOX_BACKLOG, "schema" => schema.to_owned()).set(rows as f64);
    metrics::gauge!(OUTBOX_OLDEST_AGE, "schema" => schema.to_owned()).set(oldest_secs);
    metrics::gauge!(OUTBOX_PARKED, "schema" => schema.to_owned()).set(parked as f64);
}

pub(crate) fn parked(schema: &str, rows: usize) {
    if rows > 0 {
        metrics::counter!(OUTBOX_PARKED_TOTAL, "schema" => schema.to_owned())
            .increment(rows as u64);
    }
}

/// `outcome`: `handled` or `duplicate`.
pub(crate) fn consumed(consumer: &str, kind: &str, outcome: &'static str, lag_secs: f64) {
    metrics::counter!(CONSUMED, "consumer" => consumer.to_owned(), "type" => kind.to_owned(), "outcome" => outcome)
        .increment(1);
    if outcome == "handled" {
        metrics::histogram!(HANDLE_LAG, "consumer" => consumer.to_owned()).record(lag_secs);
    }
}

pub(crate) fn retried(consumer: &str) {
    metrics::counter!(RETRIED, "consumer" => consumer.to_owned()).increment(1);
}

/// `reason`: `unparseable`, `unknown_type`, `rejected` or `exhausted`.
pub(crate) fn dead_lettered(consumer: &str, reason: &'static str) {
    metrics::counter!(DEAD_LETTERED, "consumer" => consumer.to_owned(), "reason" => reason)
        .increment(1);
}

/// A consumer found its database unreachable and is holding its events.
pub(crate) fn waiting_for_database() {
    metrics::counter!(WAITING_FOR_DATABASE).increment(1);
}
