//! The user service: accounts, login, access and refresh tokens, roles.
//!
//! It owns the `users` schema and is the shop's central auth server: it signs access
//! tokens with Ed25519 and publishes the public keys at `/.well-known/jwks.json`, so
//! every other service verifies tokens locally without calling it.

pub mod admin;
pub mod app;
pub mod client_ip;
pub mod config;
pub mod consumers;
pub mod error;
pub mod keys;
pub mod password;
pub mod refresh;
pub mod requests;
pub mod routes;
pub mod state;
pub mod throttle;
pub mod users;

pub use app::build;
pub use config::Settings;

use secrecy::ExposeSecret as _;
use shop_auth::BearerAuth;
use shop_http::ServiceInfo;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// What it says about itself; its schema (`users`) and event context (`users`) are its
/// entry in `shop_topology::SERVICES`.
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

/// Every business route, with its documentation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::auth::router())
        .merge(routes::users::router())
        .merge(routes::jwks::router())
}

/// The OpenAPI document alone (for `shop-user openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// The process: `shop-user` serves; `shop-user openapi` prints the OpenAPI document;
/// `shop-user keygen` prints a new signing key.
pub async fn main() -> anyhow::Result<()> {
    shop_service::Cli::new(INFO, openapi)
        .command(
            "keygen",
            "print a new Ed25519 signing key (PKCS#8 PEM)",
            || {
                print!("{}", keys::generate_pem()?.expose_secret());
                Ok(())
            },
        )
        .run(|| async { build(Settings::load()?).await })
        .await
}
