//! The user service, assembled on the chassis: its schema and migrations, its outbox,
//! the welcome-mail consumer, housekeeping, and its API. Tests call [`build`] with
//! port 0 and a fresh database.

use secrecy::{ExposeSecret as _, SecretString};
use shop_auth::BearerAuth;
use shop_http::ServiceInfo;
use shop_service::{Application, Service};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::config::Settings;
use crate::state::AppState;
use crate::{notifications, routes};

pub const INFO: ServiceInfo = ServiceInfo {
    name: "user",
    title: "the shop: user service",
    version: env!("CARGO_PKG_VERSION"),
    description: "Accounts, login with argon2id passwords, EdDSA access tokens (JWKS at \
                  /.well-known/jwks.json), rotating refresh tokens with reuse detection, roles.",
};

#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Register, log in, refresh, log out; the JWKS."),
        (name = "users", description = "Accounts."),
    )
)]
struct ApiDoc;

/// Connects, migrates, seeds the admin and binds; [`Application::run_until_stopped`]
/// then serves.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let service = Service::new(INFO, &settings.service)
        .migrations(sqlx::migrate!("../../migrations/user"))
        .with_outbox()
        .start()
        .await?;
    let state = AppState::new(&service, settings).await?;
    seed_admin(&state).await?;
    service
        .consumer(notifications::consumer_config(), notifications::WelcomeMail)
        .api(api().with_state(state))
        .bind()
        .await
}

/// The OpenAPI document alone (for `shop-user openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// Every business route, with its documentation.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::auth::router())
        .merge(routes::users::router())
        .merge(routes::jwks::router())
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
