//! The payment service's settings: the shared ones (`SHOP_*` variables; see
//! `shop_service::settings`) plus its own: the simulated processor and the service's
//! deadline on it (`SHOP_PROCESSOR__*`), and its consumers' ack wait
//! (`SHOP_CONSUMERS__*`). Tests shorten the timings.

use serde::{Deserialize, Serialize};
use shop_service::ServiceSettings;

use crate::INFO;
pub use crate::processor::ProcessorSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub service: ServiceSettings,
    pub processor: ProcessorSettings,
    pub consumers: ConsumerSettings,
}

/// The durable consumers of the three commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerSettings {
    /// How long JetStream waits for a command's ack before delivering it again. A
    /// command is acked within milliseconds whatever the processor does: the
    /// processor is called by the authorizer, after the command's transaction.
    pub ack_wait_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            service: ServiceSettings::defaults_for(INFO.name),
            processor: ProcessorSettings::default(),
            consumers: ConsumerSettings {
                ack_wait_ms: 30_000,
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

    /// What loading refuses: timings that cannot work.
    pub fn check(&self) -> anyhow::Result<()> {
        let processor = &self.processor;
        if processor.timeout_ms == 0 {
            anyhow::bail!("SHOP_PROCESSOR__TIMEOUT_MS must be positive");
        }
        if processor.max_in_flight == 0 {
            anyhow::bail!("SHOP_PROCESSOR__MAX_IN_FLIGHT must be positive");
        }
        if processor.sweep_every_ms == 0 {
            anyhow::bail!("SHOP_PROCESSOR__SWEEP_EVERY_MS must be positive");
        }
        if self.consumers.ack_wait_ms < 300 {
            anyhow::bail!("SHOP_CONSUMERS__ACK_WAIT_MS must be at least 300");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones_and_pass_the_checks() {
        let settings = Settings::default();
        assert!(settings.check().is_ok());
        assert_eq!(settings.service.http.port, 8085);
        assert_eq!(settings.processor.timeout_ms, 20_000);
        assert_eq!(settings.processor.hang_ms, 30_000);
    }

    #[test]
    fn a_zero_deadline_or_no_room_for_calls_is_refused() {
        let mut settings = Settings::default();
        settings.processor.timeout_ms = 0;
        assert!(settings.check().is_err());
        let mut settings = Settings::default();
        settings.processor.max_in_flight = 0;
        assert!(settings.check().is_err());
    }
}
