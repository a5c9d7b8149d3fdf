//! The state every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use shop_auth::Verifier;
use shop_events::Outbox;
use shop_service::Service;
use sqlx::PgPool;

use crate::config::Settings;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// Verifies the user service's access tokens (admin writes).
    pub verifier: Verifier,
    pub outbox: Outbox,
    pub settings: Arc<Settings>,
}

impl AppState {
    /// Over the chassis's pool and outbox; `verifier` is the production one
    /// (`AuthSettings::verifier`: the configured JWKS) or, in tests, a fixed key set.
    pub fn new(service: &Service, settings: Settings, verifier: Verifier) -> anyhow::Result<Self> {
        Ok(Self {
            db: service.db().clone(),
            verifier,
            outbox: service.outbox()?,
            settings: Arc::new(settings),
        })
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
