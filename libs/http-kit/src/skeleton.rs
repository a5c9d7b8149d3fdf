//! A service that, so far, runs only the operational surface every service shares
//! (`/healthz`, `/readyz` over its own database role and NATS, `/metrics`, `/openapi.json`,
//! `/docs`). Services not yet built out use it so that the launcher, the e2e tests and
//! the manifests treat them as real processes from the start.

use axum::Router;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use crate::health::{NatsCheck, PostgresCheck, Readiness};
use crate::server::{HttpSettings, ServiceInfo};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SkeletonSettings {
    #[serde(flatten)]
    pub http: HttpSettings,
    /// The service's own role (see `shop_db::SERVICES`); readiness checks it.
    #[serde(skip_serializing)]
    pub database_url: Option<SecretString>,
    /// NATS; readiness checks the connection.
    pub nats_url: Option<String>,
}

impl SkeletonSettings {
    pub fn on_port(port: u16) -> Self {
        Self {
            http: HttpSettings::on_port(port),
            database_url: None,
            nats_url: None,
        }
    }
}

/// The app: operational endpoints only; `schema` is the service's own, if it has one.
pub async fn router(
    info: ServiceInfo,
    settings: &SkeletonSettings,
    schema: Option<&str>,
) -> anyhow::Result<Router> {
    let mut readiness = Readiness::new();
    if let (Some(url), Some(schema)) = (&settings.database_url, schema) {
        let pool = shop_db::connect_lazy(url, schema, &shop_db::PoolSettings::default())?;
        readiness = readiness.with(PostgresCheck(pool));
    }
    if let Some(url) = &settings.nats_url {
        // Connects in the background and keeps reconnecting; readiness tells.
        let client = async_nats::ConnectOptions::new()
            .name(info.name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(url.as_str())
            .await?;
        readiness = readiness.with(NatsCheck(client));
    }
    let (router, _) = crate::app(info, OpenApiRouter::new(), readiness, &settings.http);
    Ok(router)
}

/// The whole process: telemetry, settings (`SHOP_*` over `default_port`), serve.
pub async fn main(
    info: ServiceInfo,
    default_port: u16,
    schema: Option<&str>,
) -> anyhow::Result<()> {
    let _telemetry = shop_telemetry::init(info.name)?;
    let settings = crate::config::load(SkeletonSettings::on_port(default_port))?;
    crate::run(router(info, &settings, schema).await?, &settings.http).await
}
