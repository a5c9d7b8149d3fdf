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

pub use app::Application;
pub use config::Settings;

use secrecy::ExposeSecret as _;

/// The process: `shop-user` serves; `shop-user keygen` prints a new signing key;
/// `shop-user openapi` prints the OpenAPI document.
pub async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("keygen") => {
            print!("{}", keys::generate_pem()?.expose_secret());
            return Ok(());
        }
        Some("openapi") => {
            println!("{}", app::openapi().to_pretty_json()?);
            return Ok(());
        }
        Some(other) => anyhow::bail!("unknown command `{other}` (try: keygen, openapi)"),
        None => {}
    }
    let _telemetry = shop_telemetry::init("user")?;
    let settings = Settings::load()?;
    let app = Application::build(settings).await?;
    app.run_until_stopped(shop_http::shutdown_signal()).await?;
    Ok(())
}
