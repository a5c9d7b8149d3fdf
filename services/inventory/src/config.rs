//! The inventory service's settings: the shared ones (`SHOP_*` variables; see
//! `shop_service::settings`) plus its own, `SHOP_STOCK__*`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use shop_service::ServiceSettings;

use crate::INFO;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub service: ServiceSettings,
    pub stock: StockSettings,
    pub demo: DemoSettings,
}

/// The demo stock (see `crate::demo`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DemoSettings {
    /// `SHOP_DEMO__FILE`: the demo catalog (`services/catalog/demo/products.json`),
    /// whose `stock` each SKU receives once. Only with `SHOP_ENV=local`; unset (the
    /// default), nothing is seeded.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockSettings {
    /// The low-stock threshold a new SKU gets: below it, `inventory.stock.low`.
    pub default_low_stock_threshold: i64,
    /// How often the expiry task looks for reservations past their TTL.
    pub expire_every_millis: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            service: ServiceSettings::defaults_for(INFO.name),
            stock: StockSettings {
                default_low_stock_threshold: 5,
                expire_every_millis: 2000,
            },
            demo: DemoSettings::default(),
        }
    }
}

impl Settings {
    /// Defaults, then `SHOP_CONFIG_FILE`, then `SHOP_*` variables.
    pub fn load() -> anyhow::Result<Self> {
        let settings: Self = shop_http::config::load(Self::default())?;
        if settings.demo.file.is_some() && !shop_http::config::is_local() {
            anyhow::bail!("SHOP_DEMO__FILE loads demo stock: only with SHOP_ENV=local");
        }
        Ok(settings)
    }
}
