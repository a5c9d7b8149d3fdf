//! The state every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use shop_auth::Verifier;
use shop_service::Service;
use sqlx::PgPool;

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::saga::Saga;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// The checkout saga: placement's first step, cancel requests.
    pub saga: Saga,
    /// The catalog's price lookup, with its breakers.
    pub catalog: Catalog,
    /// Checks the user service's access tokens: against its JWKS in production
    /// (`AuthSettings::verifier`), against fixed keys in tests.
    pub verifier: Verifier,
    pub settings: Arc<Settings>,
}

impl AppState {
    pub fn new(service: &Service, settings: Settings, verifier: Verifier) -> anyhow::Result<Self> {
        let catalog = Catalog::new(&settings.catalog_urls(), &settings.catalog)?;
        Ok(Self {
            db: service.db().clone(),
            saga: Saga::new(service.outbox()?, &settings.saga),
            catalog,
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
