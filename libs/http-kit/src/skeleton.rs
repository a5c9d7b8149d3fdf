//! A service that, so far, runs only the operational surface every service shares
//! (`/healthz`, `/readyz` over its own database role and NATS, `/metrics`, `/openapi.json`,
//! `/docs`). Services not yet built out use it so that the launcher, the e2e tests and
//! the manifests treat them as real processes from the start.

use std::time::Duration;

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
    /// Prefix of stream and subject names (empty outside tests).
    pub events_prefix: String,
}

impl SkeletonSettings {
    pub fn on_port(port: u16) -> Self {
        Self {
            http: HttpSettings::on_port(port),
            database_url: None,
            nats_url: None,
            events_prefix: String::new(),
        }
    }
}

/// What a service owns: its database schema and its event context (stream).
#[derive(Debug, Clone, Copy, Default)]
pub struct Owns {
    pub schema: Option<&'static str>,
    pub context: Option<&'static str>,
}

/// The app: operational endpoints only. Connects to NATS (and creates the stream of
/// the context it owns) before answering, when NATS is configured.
pub async fn router(
    info: ServiceInfo,
    settings: &SkeletonSettings,
    owns: Owns,
) -> anyhow::Result<Router> {
    let mut readiness = Readiness::new();
    if let (Some(url), Some(schema)) = (&settings.database_url, owns.schema) {
        let pool = shop_db::connect_lazy(url, schema, &shop_db::PoolSettings::default())?;
        readiness = readiness.with(PostgresCheck(pool));
    }
    if let Some(url) = &settings.nats_url {
        let (client, js) =
            shop_events::connect::connect(url, info.name, Duration::from_secs(30)).await?;
        if let Some(context) = owns.context {
            // The service owns its context's stream from the start, so the streams of
            // every context exist as soon as the stack runs.
            let ns = shop_events::Namespace::prefixed(settings.events_prefix.clone());
            shop_events::ensure_stream(&js, &ns, context).await?;
            shop_events::ensure_dead_letter_stream(&js, &ns).await?;
        }
        readiness = readiness.with(NatsCheck(client));
    }
    let (router, _) = crate::app(info, OpenApiRouter::new(), readiness, &settings.http);
    Ok(router)
}

/// The whole process: telemetry, settings (`SHOP_*` over `default_port`), serve.
pub async fn main(info: ServiceInfo, default_port: u16, owns: Owns) -> anyhow::Result<()> {
    let _telemetry = shop_telemetry::init(info.name)?;
    let settings = crate::config::load(SkeletonSettings::on_port(default_port))?;
    crate::run(router(info, &settings, owns).await?, &settings.http).await
}
