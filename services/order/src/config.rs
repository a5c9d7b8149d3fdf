//! The order service's settings: the shared ones (`SHOP_*` variables; see
//! `shop_service::settings`) plus its own: where the catalog is
//! (`SHOP_UPSTREAMS__CATALOG`), how it is called (`SHOP_CATALOG__*`), the saga's
//! deadlines (`SHOP_SAGA__*`) and how long an idempotency key lives
//! (`SHOP_IDEMPOTENCY__*`).

use serde::{Deserialize, Serialize};
use shop_resilience::{BreakerSettings, ResilienceSettings};
use shop_service::ServiceSettings;

use crate::INFO;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub service: ServiceSettings,
    pub upstreams: Upstreams,
    /// `SHOP_CATALOG__TIMEOUT_MS`, `__MAX_RETRIES`, `__BACKOFF__*`, `__BREAKER__*`,
    /// `__BUDGET__*`: the price lookup's resilience, per catalog instance (see
    /// `libs/resilience/README.md`).
    pub catalog: ResilienceSettings,
    pub saga: SagaSettings,
    pub idempotency: IdempotencySettings,
}

/// The services it calls over HTTP. The launcher passes every service's address
/// (`SHOP_UPSTREAMS__<NAME>`); only the catalog's is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upstreams {
    /// `SHOP_UPSTREAMS__CATALOG`: the catalog's instances, base URLs separated by
    /// commas (`http://127.0.0.1:8082,http://127.0.0.1:8182`).
    pub catalog: String,
}

/// The checkout saga's clocks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SagaSettings {
    /// How long an order waits `PENDING` for the inventory's answer before it is
    /// cancelled with `TIMEOUT` (10 s).
    pub reserve_timeout_ms: u64,
    /// How long an order waits `AWAITING_PAYMENT` for the payment's answer (15 s).
    pub payment_timeout_ms: u64,
    /// The `ttl_secs` of the reserve command: how long the inventory holds the stock
    /// uncommitted (60 s). Longer than both waits together, so a reservation cannot
    /// lapse while the order still waits for an answer.
    pub reservation_ttl_secs: u32,
    /// How often the deadline job looks for orders past their deadline (1 s).
    pub deadline_check_every_ms: u64,
}

/// Idempotency keys of placements.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencySettings {
    /// How long a key is remembered (24 h): a retry within that time gets the same
    /// order; after it, the key may name a new one.
    pub key_ttl_secs: u64,
    /// How often expired keys are deleted (1 h).
    pub purge_every_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let catalog_port = shop_topology::service("catalog").map_or(8082, |s| s.default_port);
        Self {
            service: ServiceSettings::defaults_for(INFO.name),
            upstreams: Upstreams {
                catalog: format!("http://127.0.0.1:{catalog_port}"),
            },
            // A checkout waits for these: a shorter attempt than the library's 2 s and
            // one retry, so two instances tried in turn still answer well inside the
            // request's own 10 s limit.
            catalog: ResilienceSettings {
                timeout_ms: 1_000,
                max_retries: 1,
                breaker: BreakerSettings::default(),
                ..ResilienceSettings::default()
            },
            saga: SagaSettings {
                reserve_timeout_ms: 10_000,
                payment_timeout_ms: 15_000,
                reservation_ttl_secs: 60,
                deadline_check_every_ms: 1_000,
            },
            idempotency: IdempotencySettings {
                key_ttl_secs: 24 * 3600,
                purge_every_secs: 3600,
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

    /// The catalog's base URLs, without trailing slashes.
    pub fn catalog_urls(&self) -> Vec<String> {
        self.upstreams
            .catalog
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// What loading refuses, naming the variable.
    pub fn check(&self) -> anyhow::Result<()> {
        let urls = self.catalog_urls();
        if urls.is_empty() {
            anyhow::bail!("SHOP_UPSTREAMS__CATALOG names no catalog instance");
        }
        if let Some(bad) = urls
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            anyhow::bail!("SHOP_UPSTREAMS__CATALOG: {bad:?} is not an http(s) base URL");
        }
        self.catalog
            .check()
            .map_err(|e| anyhow::anyhow!("SHOP_CATALOG__*: {e}"))?;
        let saga = &self.saga;
        if saga.reserve_timeout_ms == 0 || saga.payment_timeout_ms == 0 {
            anyhow::bail!(
                "SHOP_SAGA__RESERVE_TIMEOUT_MS and __PAYMENT_TIMEOUT_MS must be positive"
            );
        }
        if saga.deadline_check_every_ms == 0 {
            anyhow::bail!("SHOP_SAGA__DEADLINE_CHECK_EVERY_MS must be positive");
        }
        // A reservation that lapsed while the order still waited for the payment
        // would be committed too late: the inventory answers `expired` to a paid order.
        let waits_ms = saga.reserve_timeout_ms + saga.payment_timeout_ms;
        if u64::from(saga.reservation_ttl_secs) * 1000 <= waits_ms {
            anyhow::bail!(
                "SHOP_SAGA__RESERVATION_TTL_SECS ({} s) must be longer than the reserve and \
                 payment timeouts together ({waits_ms} ms)",
                saga.reservation_ttl_secs
            );
        }
        if saga.reservation_ttl_secs > 24 * 3600 {
            anyhow::bail!(
                "SHOP_SAGA__RESERVATION_TTL_SECS must be at most 86400 (the inventory's limit)"
            );
        }
        if self.idempotency.key_ttl_secs == 0 || self.idempotency.purge_every_secs == 0 {
            anyhow::bail!("SHOP_IDEMPOTENCY__KEY_TTL_SECS and __PURGE_EVERY_SECS must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_their_own_check() {
        Settings::default().check().unwrap();
    }

    #[test]
    fn catalog_urls_are_split_trimmed_and_checked() {
        let mut settings = Settings::default();
        settings.upstreams.catalog = " http://a:8082/, http://b:8182 ,".to_owned();
        assert_eq!(settings.catalog_urls(), ["http://a:8082", "http://b:8182"]);
        settings.check().unwrap();
        settings.upstreams.catalog = "a:8082".to_owned();
        assert!(settings.check().is_err());
        settings.upstreams.catalog = " , ".to_owned();
        assert!(settings.check().is_err());
    }

    #[test]
    fn a_reservation_shorter_than_the_saga_waits_is_refused() {
        let mut settings = Settings::default();
        settings.saga.reservation_ttl_secs = 20;
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("RESERVATION_TTL_SECS"), "{error}");
    }
}
