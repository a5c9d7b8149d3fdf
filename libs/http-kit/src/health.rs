//! `/healthz` says the process is alive; `/readyz` says whether it can do its work
//! right now (its database, its broker, its background tasks), so a load balancer or
//! Kubernetes can take an instance out of rotation without restarting it.
//!
//! The checks themselves live with what they check (the service chassis has the
//! Postgres, NATS and background-task checks), so this crate needs neither a database
//! driver nor a broker client. A probe answers each check with `ok` or `unavailable`
//! only: the reason goes to the log, never to whoever can reach the endpoint.

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

/// The future a readiness check returns: the error is for the log only.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One dependency whose availability decides readiness.
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    fn check(&self) -> CheckFuture<'_>;
}

/// How long one check may take before it counts as failed.
const CHECK_DEADLINE: Duration = Duration::from_secs(2);

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

    /// Adds a check that is already shared.
    pub fn with_shared(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Runs every check concurrently, each bounded by a short deadline so a hung
    /// dependency makes the probe fail rather than hang.
    pub async fn report(&self) -> ReadinessReport {
        let runs = self.checks.iter().map(|c| async move {
            let outcome = match tokio::time::timeout(CHECK_DEADLINE, c.check()).await {
                Ok(Ok(())) => OK,
                Ok(Err(reason)) => {
                    tracing::warn!(check = c.name(), reason, "readiness check failed");
                    UNAVAILABLE
                }
                Err(_) => {
                    tracing::warn!(check = c.name(), "readiness check timed out");
                    UNAVAILABLE
                }
            };
            (c.name(), outcome)
        });
        let checks: BTreeMap<_, _> = futures::future::join_all(runs).await.into_iter().collect();
        let ready = checks.values().all(|v| *v == OK);
        ReadinessReport {
            status: if ready { "ready" } else { "not ready" },
            checks,
        }
    }
}

const OK: &str = "ok";
const UNAVAILABLE: &str = "unavailable";

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessReport {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Each dependency and `ok` or `unavailable` (the reason is in the service's log).
    pub checks: BTreeMap<&'static str, &'static str>,
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing;

    impl ReadinessCheck for Failing {
        fn name(&self) -> &'static str {
            "postgres"
        }

        fn check(&self) -> CheckFuture<'_> {
            Box::pin(async {
                Err("password authentication failed for user \"user_svc\" at 10.0.0.7".into())
            })
        }
    }

    #[tokio::test]
    async fn a_failed_check_reports_unavailable_without_its_reason() {
        let report = Readiness::new().with(Failing).report().await;
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(report.status, "not ready");
        assert_eq!(report.checks["postgres"], "unavailable");
        assert!(
            !json.contains("user_svc") && !json.contains("10.0.0.7"),
            "{json}"
        );
    }
}
