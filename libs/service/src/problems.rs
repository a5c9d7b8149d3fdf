//! The two refusals every service's error type ends with, written once: a database
//! error and an internal one. Clients learn what they may know; the cause goes to the
//! log with the trace id.

use shop_http::Problem;

/// An unreachable database (see [`shop_db::is_unavailable`]) is a 503 with
/// `Retry-After: 1`: nothing was changed and the request may be sent again. Any other
/// database error is a 500.
pub fn database_problem(e: &sqlx::Error) -> Problem {
    if shop_db::is_unavailable(e) {
        tracing::warn!(error = %e, "database unavailable");
        Problem::unavailable(1)
    } else {
        tracing::error!(error = %e, "database error");
        Problem::internal()
    }
}

/// A 500 that says nothing of the cause, which is logged with its whole chain.
pub fn internal_problem(e: &anyhow::Error) -> Problem {
    tracing::error!(error = format!("{e:#}"), "internal error");
    Problem::internal()
}
