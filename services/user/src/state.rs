//! The state every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use shop_auth::Verifier;
use shop_events::Outbox;
use shop_service::Service;
use sqlx::PgPool;

use crate::config::Settings;
use crate::keys::SigningKeys;
use crate::password::Passwords;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub keys: Arc<SigningKeys>,
    pub verifier: Verifier,
    pub passwords: Passwords,
    pub outbox: Outbox,
    pub settings: Arc<Settings>,
}

impl AppState {
    /// Loads the signing keys and prepares password hashing, over the chassis's pool
    /// and outbox.
    pub async fn new(service: &Service, settings: Settings) -> anyhow::Result<Self> {
        let keys = Arc::new(SigningKeys::load(&settings.jwt)?);
        Ok(Self {
            db: service.db().clone(),
            verifier: keys.verifier(),
            keys,
            passwords: Passwords::new(settings.max_concurrent_hashes).await?,
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
