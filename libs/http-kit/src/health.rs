//! `/healthz` says the process is alive; `/readyz` says whether it can do its work
//! right now (its database, later its broker), so a load balancer or Kubernetes can
//! take an instance out of rotation without restarting it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

/// The future a readiness check returns.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One dependency whose availability decides readiness.
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    fn check(&self) -> CheckFuture<'_>;
}

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

/// All the checks of one service.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// Runs every check concurrently, each bounded by a short deadline so a hung
    /// dependency makes the probe fail rather than hang.
    pub async fn report(&self) -> ReadinessReport {
        let runs = self.checks.iter().map(|c| async move {
            let outcome = match tokio::time::timeout(Duration::from_secs(2), c.check()).await {
                Ok(Ok(())) => "ok".to_owned(),
                Ok(Err(e)) => format!("error: {e}"),
                Err(_) => "error: timed out after 2s".to_owned(),
            };
            (c.name(), outcome)
        });
        let checks: BTreeMap<_, _> = futures::future::join_all(runs).await.into_iter().collect();
        let ready = checks.values().all(|v| v == "ok");
        ReadinessReport {
            status: if ready { "ready" } else { "not ready" },
            checks,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessReport {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Each dependency and `ok` or the error it gave.
    pub checks: BTreeMap<&'static str, String>,
}

pub(crate) async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

pub(crate) async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let report = readiness.report().await;
    let status = if report.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}
