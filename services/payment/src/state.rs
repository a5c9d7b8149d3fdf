//! The state every handler shares. The API only reads: every change comes from the
//! checkout's commands (`crate::consumers`) and the authorizer.

use axum::extract::FromRef;
use shop_auth::Verifier;
use shop_service::Service;
use sqlx::PgPool;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// Checks the user service's access tokens: against its JWKS in production
    /// (`AuthSettings::verifier`), against fixed keys in tests.
    pub verifier: Verifier,
}

impl AppState {
    pub fn new(service: &Service, verifier: Verifier) -> Self {
        Self {
            db: service.db().clone(),
            verifier,
        }
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
