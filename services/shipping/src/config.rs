//! The shipping service's settings: the shared ones (`SHOP_*` variables; see
//! `shop_service::settings`) plus the simulated carrier's, `SHOP_CARRIER__*`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shop_service::ServiceSettings;

use crate::INFO;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub service: ServiceSettings,
    pub carrier: CarrierSettings,
}

/// The simulated carrier (`crate::carrier`): off unless a delay is set. With
/// `dispatch_after_ms`, a shipment is dispatched that long after it was created; with
/// `deliver_after_ms`, delivered that long after it was dispatched (whoever
/// dispatched it). Either may be set alone: the other step is left to an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CarrierSettings {
    /// `SHOP_CARRIER__DISPATCH_AFTER_MS`: unset (the default), no automatic dispatch.
    pub dispatch_after_ms: Option<u64>,
    /// `SHOP_CARRIER__DELIVER_AFTER_MS`: unset (the default), no automatic delivery.
    pub deliver_after_ms: Option<u64>,
    /// `SHOP_CARRIER__EVERY_MS`: how often the carrier looks for shipments due.
    pub every_ms: u64,
}

impl CarrierSettings {
    /// Whether the carrier runs at all.
    pub fn enabled(&self) -> bool {
        self.dispatch_after_ms.is_some() || self.deliver_after_ms.is_some()
    }

    pub fn dispatch_after(&self) -> Option<Duration> {
        self.dispatch_after_ms.map(Duration::from_millis)
    }

    pub fn deliver_after(&self) -> Option<Duration> {
        self.deliver_after_ms.map(Duration::from_millis)
    }

    pub fn every(&self) -> Duration {
        Duration::from_millis(self.every_ms)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            service: ServiceSettings::defaults_for(INFO.name),
            carrier: CarrierSettings {
                dispatch_after_ms: None,
                deliver_after_ms: None,
                every_ms: 1000,
            },
        }
    }
}

impl Settings {
    /// Defaults, then `SHOP_CONFIG_FILE`, then `SHOP_*` variables.
    pub fn load() -> anyhow::Result<Self> {
        let settings: Self = shop_http::config::load(Self::default())?;
        settings.check()?;
        Ok(settings)
    }

    /// What loading refuses: a carrier that would look for work constantly or hardly
    /// ever.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(10..=60_000).contains(&self.carrier.every_ms) {
            anyhow::bail!("SHOP_CARRIER__EVERY_MS must be between 10 and 60000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carrier_is_off_by_default_and_on_with_either_delay() {
        let mut settings = Settings::default();
        assert!(!settings.carrier.enabled());
        assert!(settings.check().is_ok());
        settings.carrier.deliver_after_ms = Some(0);
        assert!(settings.carrier.enabled());
        assert_eq!(settings.carrier.deliver_after(), Some(Duration::ZERO));
    }

    #[test]
    fn a_carrier_interval_out_of_range_is_refused() {
        let mut settings = Settings::default();
        for every_ms in [0, 9, 60_001] {
            settings.carrier.every_ms = every_ms;
            assert!(settings.check().is_err(), "{every_ms}");
        }
    }
}
