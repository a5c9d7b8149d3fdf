//! The user service, assembled on the chassis: its migrations, its outbox, the admin
//! account, the welcome-mail and low-stock-alert consumers, housekeeping, and its API. Tests call [`build`]
//! with port 0 and a fresh database.

use std::time::Duration;

use shop_service::{Application, Service};

use crate::config::Settings;
use crate::consumers::{low_stock_alert, welcome_mail};
use crate::state::AppState;
use crate::{INFO, admin, api, refresh, throttle};

/// Connects, migrates, seeds the admin and binds; [`Application::run_until_stopped`]
/// then serves.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let service = Service::builder(INFO, &settings.service)
        .migrations(sqlx::migrate!("../../migrations/user"))
        .with_outbox()
        .start()
        .await?;
    let state = AppState::new(&service, settings).await?;
    admin::seed(&state.db, &state.passwords, &state.settings.admin).await?;
    let (db, limits) = (state.db.clone(), state.settings.throttle.clone());
    service
        .consumer(welcome_mail::config(), welcome_mail::WelcomeMail)
        .consumer(low_stock_alert::config(), low_stock_alert::LowStockAlert)
        .every("purge-refresh-tokens", Duration::from_secs(3600), {
            let db = db.clone();
            move || refresh::purge_job(db.clone())
        })
        .every(
            "purge-login-failures",
            Duration::from_secs(600),
            move || throttle::purge_job(db.clone(), limits.clone()),
        )
        .api(api().with_state(state))
        .bind()
        .await
}
