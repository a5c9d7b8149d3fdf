//! The shipping service, assembled on the chassis: its migrations, its outbox, the
//! consumers of the order service's confirmations and cancellations, the simulated
//! carrier (when configured), the purge of old tombstones, and its API. Tests call
//! [`build_with`] with port 0, a fresh database and a verifier over fixed keys.

use std::time::Duration;

use shop_auth::Verifier;
use shop_service::{Application, PROCESSED_EVENTS_KEPT, Service};

use crate::config::Settings;
use crate::consumers::order_cancelled::{self, OrderCancelledHandler};
use crate::consumers::order_confirmed::{self, OrderConfirmedHandler};
use crate::state::AppState;
use crate::{INFO, api, cancelled_orders, carrier};

const HOUR: Duration = Duration::from_secs(3600);

/// Connects, migrates and binds, verifying tokens against the user service's JWKS.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let verifier = settings.service.auth.verifier();
    build_with(settings, verifier).await
}

/// As [`build`], with the given token verifier.
pub async fn build_with(settings: Settings, verifier: Verifier) -> anyhow::Result<Application> {
    let service = Service::builder(INFO, &settings.service)
        .migrations(sqlx::migrate!("../../migrations/shipping"))
        .with_outbox()
        .start()
        .await?;
    let state = AppState::new(&service, settings, verifier)?;
    let outbox = state.outbox.clone();
    let db = state.db.clone();
    let mut service = service
        .consumer(
            order_confirmed::config(),
            OrderConfirmedHandler(outbox.clone()),
        )
        .consumer(
            order_cancelled::config(),
            OrderCancelledHandler(outbox.clone()),
        )
        .every("purge-cancelled-orders", HOUR, {
            let db = db.clone();
            move || {
                let db = db.clone();
                async move {
                    // As long as a confirmation could still be redelivered.
                    let purged = cancelled_orders::purge(&db, PROCESSED_EVENTS_KEPT).await?;
                    tracing::debug!(purged, "old tombstones of cancelled orders purged");
                    Ok(())
                }
            }
        });
    let settings = state.settings.clone();
    if settings.carrier.enabled() {
        service = service.every("carrier", settings.carrier.every(), move || {
            let (db, outbox, settings) = (db.clone(), outbox.clone(), settings.clone());
            async move {
                carrier::run(&db, &outbox, &settings.carrier).await?;
                Ok(())
            }
        });
    }
    service.api(api().with_state(state)).bind().await
}
