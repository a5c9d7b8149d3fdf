//! The catalog service's settings: `SHOP_*` environment variables over the defaults
//! below (see `shop_http::config`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use shop_service::ServiceSettings;

use crate::INFO;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// What every service has: listener, database, NATS, token verification.
    #[serde(flatten)]
    pub service: ServiceSettings,
    pub demo: DemoSettings,
}

/// The demo catalog (see `crate::demo`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DemoSettings {
    /// `SHOP_DEMO__FILE`: a demo catalog (e.g. `services/catalog/demo/products.json`)
    /// loaded at start-up. Idempotent: what already exists is left alone, so it is
    /// safe on every start. Only with `SHOP_ENV=local`; unset (the default), nothing
    /// is seeded.
    pub file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            service: ServiceSettings::defaults_for(INFO.name),
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

    /// What loading refuses: demo data outside a local run.
    pub fn check(&self, local: bool) -> anyhow::Result<()> {
        if self.demo.file.is_some() && !local {
            anyhow::bail!("SHOP_DEMO__FILE loads a demo catalog: only with SHOP_ENV=local");
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
}
