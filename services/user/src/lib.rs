//! The user service: accounts, login, access and refresh tokens, roles.
//!
//! It owns the `users` schema and is the shop's central auth server: it signs access
//! tokens with Ed25519 and publishes the public keys at `/.well-known/jwks.json`, so
//! every other service verifies tokens locally without calling it.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod keys;
pub mod notifications;
pub mod password;
pub mod refresh;
pub mod routes;
pub mod state;
pub mod throttle;

pub use app::{INFO, build, openapi};
pub use config::Settings;

use secrecy::ExposeSecret as _;

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
