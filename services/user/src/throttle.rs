//! The per-account login throttle: after `max_failures` failed logins within
//! `window_secs`, the e-mail is locked for `lockout_secs` (429 with `Retry-After`).
//! Kept in Postgres so every replica enforces the same count.

use sqlx::PgPool;

use crate::config::ThrottleSettings;
use crate::error::{Error, Result};

/// Refuses the attempt if the e-mail is locked.
pub async fn check(db: &PgPool, email: &str) -> Result<()> {
    let remaining: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM locked_until - now())::float8 FROM login_failures
         WHERE email = $1 AND locked_until > now()",
    )
    .bind(email)
    .fetch_optional(db)
    .await?;
    match remaining {
        Some(secs) => Err(Error::Throttled {
            retry_after_secs: secs.ceil().max(1.0) as u64,
        }),
        None => Ok(()),
    }
}

/// Counts a failure; the one that reaches the limit starts the lockout.
pub async fn record_failure(db: &PgPool, email: &str, settings: &ThrottleSettings) -> Result<()> {
    let failures: i32 = sqlx::query_scalar(
        "INSERT INTO login_failures (email, failures, window_started_at) VALUES ($1, 1, now())
         ON CONFLICT (email) DO UPDATE SET
           failures = CASE WHEN login_failures.window_started_at < now() - make_interval(secs => $2)
                           THEN 1 ELSE login_failures.failures + 1 END,
           window_started_at = CASE WHEN login_failures.window_started_at < now() - make_interval(secs => $2)
                           THEN now() ELSE login_failures.window_started_at END
         RETURNING failures",
    )
    .bind(email)
    .bind(settings.window_secs as f64)
    .fetch_one(db)
    .await?;
    if failures >= settings.max_failures {
        sqlx::query(
            "UPDATE login_failures
             SET locked_until = now() + make_interval(secs => $2), failures = 0, window_started_at = now()
             WHERE email = $1",
        )
        .bind(email)
        .bind(settings.lockout_secs as f64)
        .execute(db)
        .await?;
        tracing::warn!(failures, "login locked after repeated failures");
    }
    Ok(())
}

/// A successful login forgets past failures.
pub async fn clear(db: &PgPool, email: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE email = $1")
        .bind(email)
        .execute(db)
        .await?;
    Ok(())
}
