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
    pub outbox: Outbox,
    /// Checks the user service's access tokens: against its JWKS in production
    /// (`AuthSettings::verifier`), against fixed keys in tests.
    pub verifier: Verifier,
    pub settings: Arc<Settings>,
}

impl AppState {
    pub fn new(service: &Service, settings: Settings, verifier: Verifier) -> anyhow::Result<Self> {
        Ok(Self {
            db: service.db().clone(),
            outbox: service.outbox()?,
            verifier,
            settings: Arc::new(settings),
        })
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
