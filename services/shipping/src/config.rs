//! The shipping service's settings: so far only the shared ones (`SHOP_*` variables; see
//! `shop_service::settings`).

use serde::{Deserialize, Serialize};
use shop_service::ServiceSettings;

use crate::INFO;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub service: ServiceSettings,
}

impl Settings {
    /// Defaults, then `SHOP_CONFIG_FILE`, then `SHOP_*` variables.
    pub fn load() -> anyhow::Result<Self> {
        shop_http::config::load(Self {
            service: ServiceSettings::defaults_for(INFO.name),
        })
    }
}
