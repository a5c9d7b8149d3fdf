//! The login throttle, per account and per client, kept in Postgres so every replica
//! enforces the same counts.
//!
//! - Per account (`login_failures`, by normalized e-mail, whether or not an account
//!   exists): `max_failures` failed logins within `window_secs` lock the e-mail for
//!   `lockout_secs`.
//! - Per client (`login_client_failures`, by [`ClientIp::throttle_key`]): at most
//!   `client_max_failures` failed logins within `client_window_secs`, across all
//!   e-mails, so one client can neither lock out every account nor spray guesses
//!   over them.
//!
//! An attempt is taken from both budgets *before* the password is hashed, by one
//! upsert per budget that refuses when the budget is spent, and it counts as a failure
//! until a success gives it back. Checking first and recording after the hash (the
//! obvious way) lets a burst of parallel guesses all pass the check while the first
//! ones are still queued for argon2; reserving first means at most `max_failures`
//! passwords are ever evaluated per lockout, however many arrive at once, and a
//! cancelled request still counts.

use sqlx::{PgConnection, PgPool};

use crate::client_ip::ClientIp;
use crate::config::ThrottleSettings;
use crate::error::{Error, Result};

/// An attempt taken from both budgets, to give back if the password was right.
#[derive(Debug)]
#[must_use = "a successful login must give the attempt back (`succeeded`)"]
pub struct Attempt {
    email: String,
    client: String,
}

/// Takes one attempt from the client's and the e-mail's budgets, or refuses with
/// 429. Both or neither: a refusal takes nothing, so a client hammering a locked
/// account does not also spend its own budget for that.
pub async fn reserve(
    db: &PgPool,
    email: &str,
    client: ClientIp,
    settings: &ThrottleSettings,
) -> Result<Attempt> {
    let client = client.throttle_key();
    let mut tx = db.begin().await?;
    // Always the client row first, then the account row: every login locks in this
    // order, so two logins can wait for each other but never deadlock.
    if let Some(retry_after_secs) = reserve_client(&mut tx, &client, settings).await? {
        tracing::warn!(client, "login refused: too many failures from this client");
        return Err(Error::ClientThrottled { retry_after_secs });
    }
    if let Some(retry_after_secs) = reserve_account(&mut tx, email, settings).await? {
        // Dropping `tx` rolls the client's reservation back.
        return Err(Error::AccountThrottled { retry_after_secs });
    }
    tx.commit().await?;
    Ok(Attempt {
        email: email.to_owned(),
        client,
    })
}

/// The password was right: the e-mail's failures are forgotten and the client gets
/// its attempt back. (The client's other failures stay: logging in to one's own
/// account must not wipe out guesses at others.)
pub async fn succeeded(db: &PgPool, attempt: Attempt) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE login_client_failures SET failures = greatest(failures - 1, 0) WHERE client = $1",
    )
    .bind(&attempt.client)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM login_failures WHERE email = $1")
        .bind(&attempt.email)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `None` if an attempt was taken, else the seconds until the e-mail may try again.
async fn reserve_account(
    conn: &mut PgConnection,
    email: &str,
    settings: &ThrottleSettings,
) -> Result<Option<u64>> {
    // A lockout that has ended, or a window that has passed, starts the count afresh.
    // (This also locks the row, if there is one, until the transaction ends.)
    sqlx::query(
        "UPDATE login_failures SET failures = 0, window_started_at = now(), locked_until = NULL
         WHERE email = $1
           AND (locked_until <= now()
                OR (locked_until IS NULL
                    AND window_started_at <= now() - make_interval(secs => $2)))",
    )
    .bind(email)
    .bind(settings.window_secs as f64)
    .execute(&mut *conn)
    .await?;
    // Concurrent attempts count one after the other (the upsert locks the row). The
    // attempt that reaches the limit starts the lockout at once: it may still succeed
    // (and clear the row), but no further password is evaluated while it runs.
    let reserved: Option<i32> = sqlx::query_scalar(
        "INSERT INTO login_failures AS f (email, failures, window_started_at, locked_until)
         VALUES ($1, 1, now(), CASE WHEN 1 >= $2 THEN now() + make_interval(secs => $3) END)
         ON CONFLICT (email) DO UPDATE SET
           failures = f.failures + 1,
           locked_until = CASE WHEN f.failures + 1 >= $2
                               THEN now() + make_interval(secs => $3) END
         WHERE f.locked_until IS NULL
         RETURNING failures",
    )
    .bind(email)
    .bind(settings.max_failures)
    .bind(settings.lockout_secs as f64)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(failures) = reserved {
        if failures >= settings.max_failures {
            tracing::warn!(failures, "login locked after repeated failures");
        }
        return Ok(None);
    }
    // clock_timestamp(), not now(): this transaction may have started before the one
    // that set the lockout (it waited for the row), and now() is its start.
    let remaining: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM locked_until - clock_timestamp())::float8 FROM login_failures
         WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    Ok(Some(retry_after(remaining)))
}

/// `None` if an attempt was taken, else the seconds until the client's window ends.
async fn reserve_client(
    conn: &mut PgConnection,
    client: &str,
    settings: &ThrottleSettings,
) -> Result<Option<u64>> {
    // A fixed window: the count restarts when it is over; within it, an attempt is
    // taken only while the count is under the limit.
    let reserved: Option<i32> = sqlx::query_scalar(
        "INSERT INTO login_client_failures AS c (client, failures, window_started_at)
         VALUES ($1, 1, now())
         ON CONFLICT (client) DO UPDATE SET
           failures = CASE WHEN c.window_started_at <= now() - make_interval(secs => $3)
                           THEN 1 ELSE c.failures + 1 END,
           window_started_at = CASE WHEN c.window_started_at <= now() - make_interval(secs => $3)
                           THEN now() ELSE c.window_started_at END
         WHERE c.window_started_at <= now() - make_interval(secs => $3) OR c.failures < $2
         RETURNING failures",
    )
    .bind(client)
    .bind(settings.client_max_failures)
    .bind(settings.client_window_secs as f64)
    .fetch_optional(&mut *conn)
    .await?;
    if reserved.is_some() {
        return Ok(None);
    }
    let remaining: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM window_started_at + make_interval(secs => $2) - clock_timestamp())::float8
         FROM login_client_failures WHERE client = $1",
    )
    .bind(client)
    .bind(settings.client_window_secs as f64)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(Some(retry_after(remaining)))
}

/// Whole seconds, at least one (the row may have just been cleared or expired).
fn retry_after(remaining_secs: Option<f64>) -> u64 {
    remaining_secs.unwrap_or(1.0).ceil().max(1.0) as u64
}

/// Deletes the rows that no longer limit anyone: their window has passed and their
/// lockout (if any) has ended. Returns how many. Safe to run at any time, from any
/// replica; a row deleted here would have been started afresh by the next attempt.
pub async fn purge(db: &PgPool, settings: &ThrottleSettings) -> Result<u64> {
    let accounts = sqlx::query(
        "DELETE FROM login_failures
         WHERE window_started_at <= now() - make_interval(secs => $1)
           AND (locked_until IS NULL OR locked_until <= now())",
    )
    .bind(settings.window_secs as f64)
    .execute(db)
    .await?;
    let clients = sqlx::query(
        "DELETE FROM login_client_failures
         WHERE window_started_at <= now() - make_interval(secs => $1)",
    )
    .bind(settings.client_window_secs as f64)
    .execute(db)
    .await?;
    Ok(accounts.rows_affected() + clients.rows_affected())
}

/// The housekeeping job the app schedules every ten minutes (see `app.rs`).
pub async fn purge_job(db: PgPool, settings: ThrottleSettings) -> anyhow::Result<()> {
    let purged = purge(&db, &settings).await?;
    tracing::debug!(purged, "finished login failures purged");
    Ok(())
}
