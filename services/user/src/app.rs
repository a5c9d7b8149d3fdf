//! Building and running the user service: connect, migrate, seed the admin, bind,
//! serve. Tests call [`Application::build`] with port 0 and a fresh database.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use secrecy::{ExposeSecret as _, SecretString};
use shop_auth::BearerAuth;
use shop_events::{Consumer, Namespace, Outbox, Relay, RelayConfig};
use shop_http::{HttpSettings, NatsCheck, PostgresCheck, Readiness, ServiceInfo};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::config::Settings;
use crate::keys::SigningKeys;
use crate::password::Passwords;
use crate::state::AppState;
use crate::{notifications, routes};

pub const INFO: ServiceInfo = ServiceInfo {
    name: "user",
    title: "the shop: user service",
    version: env!("CARGO_PKG_VERSION"),
    description: "Accounts, login with argon2id passwords, EdDSA access tokens (JWKS at \
                  /.well-known/jwks.json), rotating refresh tokens with reuse detection, roles.",
};

/// The schema this service owns (see `shop_db::SERVICES`).
pub const SCHEMA: &str = "users";

#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Register, log in, refresh, log out; the JWKS."),
        (name = "users", description = "Accounts."),
    )
)]
struct ApiDoc;

/// A built, bound, not yet serving user service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    js: async_nats::jetstream::Context,
    ns: Namespace,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool_settings = shop_db::PoolSettings {
            max_connections: settings.db_max_connections,
            ..Default::default()
        };
        let db = shop_db::connect_lazy(&settings.database_url, SCHEMA, &pool_settings)?;
        wait_for_database(&db, Duration::from_secs(30)).await?;
        sqlx::migrate!("../../migrations/user")
            .run(&db)
            .await
            .context("applying the user service's migrations")?;

        let (nats, js) =
            shop_events::connect::connect(&settings.nats_url, INFO.name, Duration::from_secs(30))
                .await?;
        let ns = Namespace::prefixed(settings.events_prefix.clone());
        // This service owns the USERS stream.
        shop_events::ensure_stream(&js, &ns, "users").await?;
        shop_events::ensure_dead_letter_stream(&js, &ns).await?;

        let keys = Arc::new(SigningKeys::load(&settings.jwt)?);
        let state = AppState {
            db,
            verifier: keys.verifier(),
            keys,
            passwords: Passwords::new(settings.max_concurrent_hashes).await?,
            outbox: Outbox::new(ns.clone(), SCHEMA),
            settings: Arc::new(settings),
        };
        seed_admin(&state).await?;

        let listener = shop_http::bind(&state.settings.http).await?;
        let readiness = Readiness::new()
            .with(PostgresCheck(state.db.clone()))
            .with(NatsCheck(nats));
        let (router, _) = router(state.clone(), readiness, &state.settings.http);
        Ok(Self {
            listener,
            router,
            state,
            js,
            ns,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP, and in the background relays the outbox and sends welcome
    /// e-mails, until `shutdown`; then lets in-flight requests and events finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let until_stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };
        let relay = Relay::new(
            self.state.db.clone(),
            self.js.clone(),
            RelayConfig::new(SCHEMA),
        );
        let relay = tokio::spawn(relay.run(until_stopped(stopped.clone())));
        let welcome = Consumer::new(
            self.state.db.clone(),
            self.js.clone(),
            self.ns.clone(),
            notifications::consumer_config(),
            notifications::WelcomeMail,
        );
        let welcome = tokio::spawn(welcome.run(until_stopped(stopped)));

        let served = shop_http::serve(self.listener, self.router, shutdown).await;
        let _ = stop.send(true);
        for (task, name) in [(relay, "outbox relay"), (welcome, "welcome-mail consumer")] {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = format!("{e:#}"), "{name} failed"),
                Err(e) => tracing::error!(error = %e, "{name} panicked"),
            }
        }
        served
    }
}

/// The full HTTP app and its OpenAPI document.
pub fn router(
    state: AppState,
    readiness: Readiness,
    http: &HttpSettings,
) -> (Router, utoipa::openapi::OpenApi) {
    shop_http::app(INFO, api().with_state(state), readiness, http)
}

/// The OpenAPI document alone (for `shop-user openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// Every business route, with its documentation.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::auth::router())
        .merge(routes::users::router())
        .merge(routes::jwks::router())
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

/// Creates the configured admin if no account has that e-mail. An existing account
/// keeps its password; it is only made sure to hold the admin role.
async fn seed_admin(state: &AppState) -> anyhow::Result<()> {
    let admin = &state.settings.admin;
    let email = crate::domain::normalize_email(&admin.email);
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)")
        .bind(&email)
        .fetch_one(&state.db)
        .await?;
    if exists {
        sqlx::query(
            "UPDATE users SET roles = array_append(roles, 'admin'), updated_at = now()
             WHERE email = $1 AND NOT ('admin' = ANY (roles))",
        )
        .bind(&email)
        .execute(&state.db)
        .await?;
        return Ok(());
    }
    let Some(password) = &admin.password else {
        tracing::warn!("no admin password configured (SHOP_ADMIN__PASSWORD): no admin seeded");
        return Ok(());
    };
    let hash = state
        .passwords
        .hash(SecretString::from(password.expose_secret().to_owned()))
        .await?;
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, roles)
         VALUES ($1, $2, 'Administrator', $3, ARRAY['customer', 'admin'])
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(&email)
    .bind(hash)
    .execute(&state.db)
    .await?;
    tracing::info!("admin account seeded");
    Ok(())
}
