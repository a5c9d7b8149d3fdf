//! The microservice chassis: everything a service of the shop runs besides its own
//! business, written once. A service's `app.rs` is one builder call that reads like a
//! table of contents:
//!
//! ```ignore
//! pub async fn build(settings: Settings) -> anyhow::Result<Application> {
//!     let service = Service::builder(INFO, &settings.service)
//!         .migrations(sqlx::migrate!("../../migrations/user"))
//!         .with_outbox()
//!         .start()          // waits for Postgres, migrates, connects NATS, ensures its stream
//!         .await?;
//!     let state = AppState::new(&service, settings).await?;
//!     service
//!         .consumer(ConsumerConfig::new("user-welcome-mail"), WelcomeMail)
//!         .every("purge-refresh-tokens", Duration::from_secs(3600), move || purge(db.clone()))
//!         .api(api().with_state(state))
//!         .bind()           // the listener, the operational endpoints, readiness
//!         .await
//! }
//! ```
//!
//! What it runs: the service's pool on its own schema (after waiting for Postgres),
//! its migrations, NATS with the stream of the context it owns and the dead-letter
//! stream (and, at `bind`, the streams its consumers read, with their owners'
//! configuration, so no start-up order is required), the outbox relay, its consumers and periodic jobs under supervision
//! (restarted with backoff, reported by `/readyz` while down), the HTTP API behind the
//! standard middleware with `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and
//! `/docs`, the `openapi` subcommand ([`Cli`]), and graceful shutdown of all of it.

mod checks;
mod cli;
mod problems;
pub mod settings;
mod supervise;

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use axum::Router;
use shop_events::{
    Consumer, ConsumerConfig, EventHandler, Namespace, Outbox, Relay, purge_processed,
};
use shop_http::{Readiness, ServiceInfo};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;

pub use checks::{NatsCheck, PostgresCheck};
pub use cli::Cli;
pub use problems::{database_problem, internal_problem};
pub use settings::{AuthSettings, ServiceSettings};
pub use supervise::{Shutdown, TASK_RESTARTS, TaskFn, TaskFuture, TaskHealth};

/// How long the processed-event records are kept: a day longer than the streams keep
/// their messages, after which no redelivery can meet them.
pub const PROCESSED_EVENTS_KEPT: Duration =
    Duration::from_secs(shop_events::RETENTION.as_secs() + 24 * 3600);

/// How long stopping waits for background tasks to finish their work in hand.
const TASK_GRACE: Duration = Duration::from_secs(30);

/// The first step: what the service is and what it needs before it can start.
pub struct Builder {
    info: ServiceInfo,
    settings: ServiceSettings,
    migrator: Option<Migrator>,
    outbox: bool,
}

/// A started service: connected to Postgres (migrated) and NATS, collecting the
/// consumers, jobs and API it will run.
pub struct Service {
    info: ServiceInfo,
    settings: ServiceSettings,
    db: PgPool,
    nats: async_nats::Client,
    js: jetstream::Context,
    ns: Namespace,
    outbox: Option<Outbox>,
    tasks: Vec<(String, TaskFn)>,
    /// The contexts its consumers read (their streams are ensured at `bind`).
    consumed: Vec<&'static str>,
    api: OpenApiRouter,
}

impl Service {
    /// The service `info.name`, as listed in `shop_topology::SERVICES` (its schema and
    /// event context come from there).
    pub fn builder(info: ServiceInfo, settings: &ServiceSettings) -> Builder {
        Builder {
            info,
            settings: settings.clone(),
            migrator: None,
            outbox: false,
        }
    }
}

impl Builder {
    /// The migrations of its schema (`sqlx::migrate!("../../migrations/<name>")`),
    /// applied at start-up.
    pub fn migrations(mut self, migrator: Migrator) -> Self {
        self.migrator = Some(migrator);
        self
    }

    /// It publishes events: an outbox (the `outbox` table must be in its migrations)
    /// and the relay that drains it, run under supervision.
    pub fn with_outbox(mut self) -> Self {
        self.outbox = true;
        self
    }

    /// Waits for Postgres, applies the migrations, connects to NATS and creates (or
    /// updates) the stream of the context it owns and the dead-letter stream.
    pub async fn start(self) -> anyhow::Result<Service> {
        let Builder {
            info,
            settings,
            migrator,
            outbox,
        } = self;
        let entry = shop_topology::service(info.name)
            .with_context(|| format!("{} is not in shop_topology::SERVICES", info.name))?;
        let data = entry
            .data
            .with_context(|| format!("{} owns no schema in shop_topology", info.name))?;
        let url = settings
            .database_url
            .as_ref()
            .context("SHOP_DATABASE_URL is not set")?;
        let deadline = Duration::from_secs(settings.connect_timeout_secs);
        let pool_settings = shop_db::PoolSettings {
            max_connections: settings.db_max_connections,
            ..Default::default()
        };
        let db = shop_db::connect_lazy(url, data.schema, &pool_settings)?;
        wait_for_database(&db, deadline).await?;
        if let Some(migrator) = migrator {
            migrator
                .run(&db)
                .await
                .with_context(|| format!("applying the {} migrations", info.name))?;
        }

        let (nats, js) = shop_events::connect::connect(
            &settings.nats_url,
            info.name,
            deadline,
            &settings.nats_security()?,
        )
        .await?;
        let ns = Namespace::prefixed(settings.events_prefix.clone());
        if let Some(events) = entry.events {
            shop_events::ensure_stream(&js, &ns, events.context).await?;
        }
        shop_events::ensure_dead_letter_stream(&js, &ns).await?;

        let mut service = Service {
            info,
            settings,
            db,
            nats,
            js,
            ns,
            outbox: None,
            tasks: Vec::new(),
            consumed: Vec::new(),
            api: OpenApiRouter::new(),
        };
        if outbox {
            let (outbox, relay) = shop_events::outbox(
                service.db.clone(),
                service.js.clone(),
                service.ns.clone(),
                data.schema,
                info.name,
            );
            service.outbox = Some(outbox);
            service = service.relay(relay);
        }
        Ok(service)
    }
}

impl Service {
    /// Its pool: its own role, its own schema.
    pub fn db(&self) -> &PgPool {
        &self.db
    }

    /// Where its events go (in the same transaction as the change they describe).
    pub fn outbox(&self) -> anyhow::Result<Outbox> {
        self.outbox
            .clone()
            .context("this service has no outbox: call .with_outbox() before .start()")
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    fn relay(self, relay: Relay) -> Self {
        self.task("outbox-relay", move |shutdown| {
            let relay = relay.clone();
            async move { relay.run(shutdown.wait()).await }
        })
    }

    /// A durable consumer of one event contract, handled by `handler`. Its processed
    /// records are purged once older than [`PROCESSED_EVENTS_KEPT`].
    pub fn consumer<H: EventHandler>(mut self, config: ConsumerConfig, handler: H) -> Self {
        let name = format!("consumer:{}", config.name);
        let consumer = Consumer::new(
            self.db.clone(),
            self.js.clone(),
            self.ns.clone(),
            config,
            handler,
        );
        let context = shop_events::context_of(<H::Event as shop_events::Event>::TYPE);
        if !self.consumed.contains(&context) {
            self.consumed.push(context);
        }
        self.task(name, move |shutdown| {
            let consumer = consumer.clone();
            async move { consumer.run(shutdown.wait()).await }
        })
    }

    /// A long-running background task under supervision: restarted with backoff if it
    /// fails, panics or ends before shutdown, and `/readyz` is not ready meanwhile.
    pub fn task<F, Fut>(mut self, name: impl Into<String>, run: F) -> Self
    where
        F: Fn(Shutdown) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let run: TaskFn = std::sync::Arc::new(move |shutdown| Box::pin(run(shutdown)));
        self.tasks.push((name.into(), run));
        self
    }

    /// A job run every `interval` (housekeeping such as purges); a failed run is
    /// logged and does not affect readiness.
    pub fn every<F, Fut>(mut self, name: impl Into<String>, interval: Duration, job: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.into();
        let run = supervise::periodic(name.clone(), interval, job);
        self.tasks.push((name, run));
        self
    }

    /// Its business routes, documented (already given their state).
    pub fn api(mut self, api: OpenApiRouter) -> Self {
        self.api = self.api.merge(api);
        self
    }

    /// Binds the listener and assembles the HTTP app: the API plus the operational
    /// endpoints, with readiness over Postgres, NATS and the background tasks.
    pub async fn bind(mut self) -> anyhow::Result<Application> {
        // A consumed stream may belong to a service that has not started yet: create
        // it with its owner's configuration, so start-up order does not matter.
        for context in &self.consumed {
            shop_events::ensure_stream(&self.js, &self.ns, context).await?;
        }
        if !self.consumed.is_empty() {
            let db = self.db.clone();
            self = self.every(
                "purge-processed-events",
                Duration::from_secs(3600),
                move || {
                    let db = db.clone();
                    async move {
                        let purged = purge_processed(&db, PROCESSED_EVENTS_KEPT).await?;
                        tracing::debug!(purged, "processed-event records purged");
                        Ok(())
                    }
                },
            );
        }
        let health = TaskHealth::default();
        let readiness = Readiness::new()
            .with(PostgresCheck(self.db.clone()))
            .with(NatsCheck(self.nats.clone()))
            .with(health.clone());
        let listener = shop_http::bind(&self.settings.http).await?;
        let (router, _) = shop_http::app(self.info, self.api, readiness, &self.settings.http);
        Ok(Application {
            listener,
            router,
            http: self.settings.http,
            tasks: self.tasks,
            health,
        })
    }
}

/// A bound, not yet serving service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    http: shop_http::HttpSettings,
    tasks: Vec<(String, TaskFn)>,
    health: TaskHealth,
}

impl Application {
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves HTTP and runs the background tasks until `shutdown`; then stops
    /// accepting, lets in-flight requests finish and gives the tasks time to finish
    /// the work in hand.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopping) = Shutdown::new();
        let tasks: Vec<_> = self
            .tasks
            .into_iter()
            .map(|(name, run)| {
                tokio::spawn(supervise::supervise(
                    name,
                    run,
                    self.health.clone(),
                    stopping.clone(),
                ))
            })
            .collect();
        let served = shop_http::serve_with(self.listener, self.router, &self.http, shutdown).await;
        let _ = stop.send(true);
        let drained = tokio::time::timeout(TASK_GRACE, futures::future::join_all(tasks)).await;
        if drained.is_err() {
            tracing::warn!(
                grace_secs = TASK_GRACE.as_secs(),
                "background tasks did not stop in time"
            );
        }
        served.context("serving HTTP")
    }
}

async fn wait_for_database(db: &PgPool, deadline: Duration) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        match sqlx::query("SELECT 1").execute(db).await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e).context("the database stayed unreachable"),
        }
    }
}

/// The OpenAPI document of `api`, titled by `info`: what `/openapi.json` serves,
/// without starting anything (the `openapi` subcommand, the gateway's docs).
pub fn openapi<S>(info: ServiceInfo, api: OpenApiRouter<S>) -> utoipa::openapi::OpenApi
where
    S: Clone + Send + Sync + 'static,
{
    let mut doc = api.into_openapi();
    doc.info.title = info.title.to_owned();
    doc.info.version = info.version.to_owned();
    doc.info.description = Some(info.description.to_owned());
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processed_event_records_outlive_the_streams_retention() {
        // A record purged while its message can still be redelivered would let the
        // redelivery apply the event a second time.
        assert!(PROCESSED_EVENTS_KEPT > shop_events::RETENTION);
    }
}
