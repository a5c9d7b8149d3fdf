//! The order service, assembled on the chassis: its migrations, its outbox, one
//! consumer per answer the saga follows, the deadline job (held back after a start
//! until the answers that waited are handled), the purge of expired
//! idempotency keys, the state gauge, and its API. Tests call [`build_with`] with
//! port 0, a fresh database and a verifier over fixed keys.

use std::time::Duration;

use shop_auth::Verifier;
use shop_events::Event as _;
use shop_events::contracts::inventory::{StockExpired, StockRejected, StockReserved};
use shop_events::contracts::payments::{PaymentAuthorized, PaymentDeclined};
use shop_service::{Application, Service};

use crate::catch_up::CatchUp;
use crate::config::Settings;
use crate::consumers::{self, inventory, payments, shipping};
use crate::state::AppState;
use crate::{INFO, api, idempotency, metrics, orders};

/// How often `orders_in_state` is counted.
const COUNT_EVERY: Duration = Duration::from_secs(15);
/// The longest the deadlines wait after a start for the answers that arrived while the
/// service was down (see `crate::catch_up`): longer than a consumer's ack wait, since an
/// answer the broker handed to the stopped process's last pull request comes again
/// only once that wait is over.
fn catch_up_patience() -> Duration {
    crate::consumers::config("patience").ack_wait + Duration::from_secs(15)
}

/// Connects, migrates and binds, verifying tokens against the user service's JWKS.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let verifier = settings.service.auth.verifier();
    build_with(settings, verifier).await
}

/// As [`build`], with the given token verifier.
pub async fn build_with(settings: Settings, verifier: Verifier) -> anyhow::Result<Application> {
    settings.check()?;
    crate::metrics::register();
    let service = Service::builder(INFO, &settings.service)
        .migrations(sqlx::migrate!("../../migrations/order"))
        .with_outbox()
        .start()
        .await?;
    let state = AppState::new(&service, settings, verifier)?;
    let saga = state.saga.clone();
    let db = state.db.clone();
    let deadline_every = Duration::from_millis(state.settings.saga.deadline_check_every_ms);
    let purge_every = Duration::from_secs(state.settings.idempotency.purge_every_secs);
    let (deadlines, keys, counts) = (db.clone(), db.clone(), db);
    let catch_up = CatchUp::new(
        service.jetstream().clone(),
        service.namespace(),
        &[
            (StockReserved::TYPE, inventory::RESERVED),
            (StockRejected::TYPE, inventory::REJECTED),
            (StockExpired::TYPE, inventory::EXPIRED),
            (PaymentAuthorized::TYPE, payments::AUTHORIZED),
            (PaymentDeclined::TYPE, payments::DECLINED),
        ],
        catch_up_patience(),
    );
    service
        .consumer(
            consumers::config(inventory::RESERVED),
            inventory::Reserved(saga.clone()),
        )
        .consumer(
            consumers::config(inventory::REJECTED),
            inventory::Rejected(saga.clone()),
        )
        .consumer(
            consumers::config(inventory::EXPIRED),
            inventory::Expired(saga.clone()),
        )
        .consumer(
            consumers::config(payments::AUTHORIZED),
            payments::Authorized(saga.clone()),
        )
        .consumer(
            consumers::config(payments::DECLINED),
            payments::Declined(saga.clone()),
        )
        .consumer(
            consumers::config(shipping::CREATED),
            shipping::Created(saga.clone()),
        )
        .consumer(
            consumers::config(shipping::DISPATCHED),
            shipping::Dispatched(saga.clone()),
        )
        .consumer(
            consumers::config(shipping::DELIVERED),
            shipping::Delivered(saga.clone()),
        )
        .every("saga-deadlines", deadline_every, move || {
            saga.clone()
                .deadline_job(deadlines.clone(), catch_up.clone())
        })
        .every("purge-idempotency-keys", purge_every, move || {
            let db = keys.clone();
            async move {
                let purged = idempotency::purge_expired(&db).await?;
                tracing::debug!(purged, "expired idempotency keys purged");
                Ok(())
            }
        })
        .every("orders-in-state", COUNT_EVERY, move || {
            let db = counts.clone();
            async move {
                metrics::in_state(&orders::count_by_status(&db).await?);
                Ok(())
            }
        })
        .api(api().with_state(state))
        .bind()
        .await
}
