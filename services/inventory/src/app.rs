//! The inventory service, assembled on the chassis: its migrations, its outbox, the
//! consumers of the catalog's product events and of the reservation commands, the
//! reservation expiry, and its API. Tests call [`build_with`] with port 0, a fresh
//! database and a verifier over fixed keys.

use std::time::Duration;

use shop_auth::Verifier;
use shop_service::{Application, Service};

use crate::config::Settings;
use crate::consumers::product_created::{self, ProductCreatedHandler};
use crate::consumers::reservation::{self, Commit, Release, Reserve, Return};
use crate::state::AppState;
use crate::{INFO, api, demo, reservations};

/// Connects, migrates, seeds the demo stock if configured and binds, verifying tokens against the user service's JWKS.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let verifier = settings.service.auth.verifier();
    build_with(settings, verifier).await
}

/// As [`build`], with the given token verifier.
pub async fn build_with(settings: Settings, verifier: Verifier) -> anyhow::Result<Application> {
    let service = Service::builder(INFO, &settings.service)
        .migrations(sqlx::migrate!("../../migrations/inventory"))
        .with_outbox()
        .start()
        .await?;
    let state = AppState::new(&service, settings, verifier)?;
    let threshold = state.settings.stock.default_low_stock_threshold;
    if let Some(file) = &state.settings.demo.file {
        demo::seed_file(&state.db, &state.outbox, file, threshold).await?;
    }
    let outbox = state.outbox.clone();
    let db = state.db.clone();
    let expire_every = Duration::from_millis(state.settings.stock.expire_every_millis);
    let new_product = ProductCreatedHandler {
        outbox: outbox.clone(),
        threshold,
    };
    service
        .consumer(product_created::config(), new_product)
        .consumer(reservation::reserve_config(), Reserve(outbox.clone()))
        .consumer(reservation::commit_config(), Commit(outbox.clone()))
        .consumer(reservation::release_config(), Release(outbox.clone()))
        .consumer(reservation::return_config(), Return(outbox.clone()))
        .every("expire-reservations", expire_every, move || {
            reservations::expiry_job(db.clone(), outbox.clone())
        })
        .api(api().with_state(state))
        .bind()
        .await
}
