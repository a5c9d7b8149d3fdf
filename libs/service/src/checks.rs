//! The readiness checks that need a database driver or a broker client. They live in
//! the chassis, not in `shop-http`, so a crate that only speaks HTTP compiles neither.

use shop_http::{CheckFuture, ReadinessCheck};

/// Postgres is ready when a trivial query round-trips.
#[derive(Clone)]
pub struct PostgresCheck(pub sqlx::PgPool);

impl ReadinessCheck for PostgresCheck {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(&self.0)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// NATS is ready when the client is connected (it reconnects by itself).
#[derive(Clone)]
pub struct NatsCheck(pub async_nats::Client);

impl ReadinessCheck for NatsCheck {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match self.0.connection_state() {
                async_nats::connection::State::Connected => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
    }
}
