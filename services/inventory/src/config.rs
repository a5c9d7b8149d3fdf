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
        settings.check(shop_http::config::is_local())?;
        Ok(settings)
    }

    /// What loading refuses: demo data outside a local run, a negative low-stock threshold.
    pub fn check(&self, local: bool) -> anyhow::Result<()> {
        if self.demo.file.is_some() && !local {
            anyhow::bail!("SHOP_DEMO__FILE loads demo stock: only with SHOP_ENV=local");
        }
        if self.stock.default_low_stock_threshold < 0 {
            anyhow::bail!("SHOP_STOCK__DEFAULT_LOW_STOCK_THRESHOLD must not be negative");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_is_refused_outside_a_local_run() {
        let mut settings = Settings::default();
        settings.demo.file = Some(PathBuf::from("services/catalog/demo/products.json"));
        assert!(settings.check(true).is_ok());
        let refused = settings.check(false).unwrap_err().to_string();
        assert!(refused.contains("SHOP_ENV=local"), "{refused}");
        settings.demo.file = None;
        assert!(settings.check(false).is_ok());
    }

    #[test]
    fn a_negative_low_stock_threshold_is_refused() {
        let mut settings = Settings::default();
        settings.stock.default_low_stock_threshold = -1;
        assert!(settings.check(true).is_err());
    }
}
