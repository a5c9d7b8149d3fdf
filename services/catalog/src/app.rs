//! The catalog service, assembled on the chassis: its migrations, its outbox, the demo
//! catalog, the availability consumer and its API. Tests call [`build_with`] with port
//! 0, a fresh database and a verifier of their own keys.

use shop_auth::Verifier;
use shop_service::{Application, Service};

use crate::config::Settings;
use crate::consumers::availability;
use crate::state::AppState;
use crate::{INFO, api, demo};

/// Verifies tokens against the user service's JWKS (`SHOP_AUTH__*`), then
/// [`build_with`].
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let verifier = settings.service.auth.verifier();
    build_with(settings, verifier).await
}

/// Connects, migrates, seeds the demo catalog if configured and binds;
/// [`Application::run_until_stopped`] then serves.
pub async fn build_with(settings: Settings, verifier: Verifier) -> anyhow::Result<Application> {
    let service = Service::builder(INFO, &settings.service)
        .migrations(sqlx::migrate!("../../migrations/catalog"))
        .with_outbox()
        .start()
        .await?;
    let state = AppState::new(&service, settings, verifier)?;
    if let Some(file) = &state.settings.demo.file {
        demo::seed_file(&state.db, &state.outbox, file).await?;
    }
    service
        .consumer(availability::config(), availability::Availability)
        .api(api().with_state(state))
        .bind()
        .await
}
