//! The state every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use shop_auth::Verifier;
use shop_events::Outbox;
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

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
