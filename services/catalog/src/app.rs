//! The catalog service, assembled on the chassis.

use shop_service::{Application, Service};

use crate::config::Settings;
use crate::{INFO, api};

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    Service::builder(INFO, &settings.service)
        .start()
        .await?
        .api(api())
        .bind()
        .await
}
