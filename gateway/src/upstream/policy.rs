//! How an upstream is balanced and watched: the `[upstreams.<name>]` table of the gateway
//! file. Every field has a default, so an upstream without a table gets sensible ones.

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde::Deserialize;

/// Which instance takes the next request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each available instance in turn.
    RoundRobin,
    /// The available instance with the fewest requests in flight (ties taken in turn).
    LeastConnections,
    /// Two available instances drawn at random, the one with fewer requests in flight:
    /// nearly as good as least-connections, without every gateway worker piling onto
    /// the same "least loaded" instance at once.
    #[default]
    PowerOfTwo,
}

/// Per-upstream balancing, health checks and ejection.
///
/// When embedded with `#[serde(flatten)]` beside other keys, serde ignores
/// `deny_unknown_fields` here: check the table's keys against [`UpstreamPolicy::FIELDS`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamPolicy {
    /// `round_robin`, `least_connections` or `power_of_two` (default).
    pub balance: Balance,
    /// The path of the active health check: a 2xx answer passes (default `/readyz`).
    pub health_path: String,
    /// Time between two health checks of every instance (default 2000).
    pub health_interval_ms: u64,
    /// A check without an answer by then fails (default 1000).
    pub health_timeout_ms: u64,
    /// Consecutive failed checks that take an instance out (default 2).
    pub unhealthy_after: u32,
    /// Consecutive passed checks that put it back (default 2).
    pub healthy_after: u32,
    /// Consecutive failures of real traffic (reported by the proxy) that eject an
    /// instance (default 5).
    pub eject_after: u32,
    /// How long a first ejection lasts; each repeat doubles it (default 5000).
    pub ejection_ms: u64,
    /// The longest ejection (default 60000).
    pub max_ejection_ms: u64,
    /// The largest share of the instances that may be ejected at once, in percent
    /// (default 50). Whatever the share, ejection never takes the last available
    /// instance: only failed health checks can leave an upstream with none.
    pub max_ejected_percent: u8,
    /// Time between two DNS lookups of a `dns://` upstream (default 5000).
    pub dns_refresh_ms: u64,
    /// The most requests waiting for their answer from one instance at once (default
    /// 128). Further requests wait for one to be answered, within their route's
    /// timeout, instead of opening ever more connections to an instance that is
    /// already slow: a burst queues at the gateway, and the instance is not buried in
    /// connects. The slot is given back once the answer's head is in: a body then
    /// streams at the client's pace, and a slow reader holds a connection, not a slot.
    pub max_connections: u32,
}

impl Default for UpstreamPolicy {
    fn default() -> Self {
        Self {
            balance: Balance::default(),
            health_path: "/readyz".to_owned(),
            health_interval_ms: 2000,
            health_timeout_ms: 1000,
            unhealthy_after: 2,
            healthy_after: 2,
            eject_after: 5,
            ejection_ms: 5000,
            max_ejection_ms: 60_000,
            max_ejected_percent: 50,
            dns_refresh_ms: 5000,
            max_connections: 128,
        }
    }
}

impl UpstreamPolicy {
    /// The table's keys, for a caller that flattens this struct into its own and so must
    /// refuse unknown keys itself.
    pub const FIELDS: &[&str] = &[
        "balance",
        "health_path",
        "health_interval_ms",
        "health_timeout_ms",
        "unhealthy_after",
        "healthy_after",
        "eject_after",
        "ejection_ms",
        "max_ejection_ms",
        "max_ejected_percent",
        "dns_refresh_ms",
        "max_connections",
    ];

    /// Refuses values that cannot work, naming the field.
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(
            self.health_path.starts_with('/'),
            "health_path: {:?} must start with /",
            self.health_path
        );
        http::uri::PathAndQuery::try_from(self.health_path.as_str())
            .with_context(|| format!("health_path: {:?} is not a path", self.health_path))?;
        for (field, value) in [
            ("health_interval_ms", self.health_interval_ms),
            ("health_timeout_ms", self.health_timeout_ms),
            ("unhealthy_after", self.unhealthy_after.into()),
            ("healthy_after", self.healthy_after.into()),
            ("eject_after", self.eject_after.into()),
            ("ejection_ms", self.ejection_ms),
            ("dns_refresh_ms", self.dns_refresh_ms),
            ("max_connections", self.max_connections.into()),
        ] {
            ensure!(value > 0, "{field}: must be at least 1");
        }
        if self.max_ejection_ms < self.ejection_ms {
            bail!(
                "max_ejection_ms: {} is shorter than ejection_ms ({})",
                self.max_ejection_ms,
                self.ejection_ms
            );
        }
        ensure!(
            self.max_connections as usize <= tokio::sync::Semaphore::MAX_PERMITS,
            "max_connections: {} is too many",
            self.max_connections
        );
        ensure!(
            self.max_ejected_percent <= 100,
            "max_ejected_percent: {} is more than 100",
            self.max_ejected_percent
        );
        Ok(())
    }

    pub(crate) fn health_interval(&self) -> Duration {
        Duration::from_millis(self.health_interval_ms.max(1))
    }

    pub(crate) fn health_timeout(&self) -> Duration {
        Duration::from_millis(self.health_timeout_ms.max(1))
    }

    pub(crate) fn dns_refresh(&self) -> Duration {
        Duration::from_millis(self.dns_refresh_ms.max(1))
    }

    /// The length of an instance's `repeat`-th ejection (0 for the first): doubled each
    /// time, up to `max_ejection_ms`.
    pub(crate) fn ejection_for(&self, repeat: u32) -> Duration {
        let doubled = self
            .ejection_ms
            .saturating_mul(1u64.checked_shl(repeat).unwrap_or(u64::MAX));
        Duration::from_millis(doubled.min(self.max_ejection_ms).max(1))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_empty_table_gives_the_defaults_and_they_pass_the_check() {
        let policy: UpstreamPolicy = serde_json::from_value(json!({})).unwrap();
        assert_eq!(policy, UpstreamPolicy::default());
        assert_eq!(policy.balance, Balance::PowerOfTwo);
        assert_eq!(policy.health_path, "/readyz");
        policy.check().unwrap();
    }

    #[test]
    fn balance_is_written_in_snake_case() {
        for (raw, balance) in [
            ("round_robin", Balance::RoundRobin),
            ("least_connections", Balance::LeastConnections),
            ("power_of_two", Balance::PowerOfTwo),
        ] {
            let policy: UpstreamPolicy = serde_json::from_value(json!({ "balance": raw })).unwrap();
            assert_eq!(policy.balance, balance);
        }
        assert!(serde_json::from_value::<UpstreamPolicy>(json!({"balance": "random"})).is_err());
    }

    #[test]
    fn every_listed_field_is_accepted_and_an_unknown_one_is_refused() {
        let sample = json!({
            "balance": "round_robin",
            "health_path": "/health",
            "health_interval_ms": 1,
            "health_timeout_ms": 1,
            "unhealthy_after": 1,
            "healthy_after": 1,
            "eject_after": 1,
            "ejection_ms": 1,
            "max_ejection_ms": 1,
            "max_ejected_percent": 1,
            "dns_refresh_ms": 1,
            "max_connections": 1,
        });
        let keys: Vec<&str> = sample
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut listed = UpstreamPolicy::FIELDS.to_vec();
        listed.sort_unstable();
        assert_eq!(keys, listed);
        let policy: UpstreamPolicy = serde_json::from_value(sample).unwrap();
        policy.check().unwrap();
        let typo = serde_json::from_value::<UpstreamPolicy>(json!({"eject_afer": 3}));
        assert!(typo.unwrap_err().to_string().contains("eject_afer"));
    }

    #[test]
    fn values_that_cannot_work_are_refused_naming_the_field() {
        for (field, bad) in [
            ("health_path", json!({"health_path": "readyz"})),
            ("health_path", json!({"health_path": "/ready z"})),
            ("health_interval_ms", json!({"health_interval_ms": 0})),
            ("eject_after", json!({"eject_after": 0})),
            ("healthy_after", json!({"healthy_after": 0})),
            ("max_ejection_ms", json!({"max_ejection_ms": 100})),
            ("max_ejected_percent", json!({"max_ejected_percent": 101})),
        ] {
            let policy: UpstreamPolicy = serde_json::from_value(bad).unwrap();
            let error = policy.check().unwrap_err().to_string();
            assert!(error.starts_with(field), "{field}: {error}");
        }
    }

    #[test]
    fn each_repeat_ejection_lasts_twice_as_long_up_to_the_maximum() {
        let policy = UpstreamPolicy::default();
        let lengths: Vec<u64> = [0, 1, 2, 3, 4, 40]
            .map(|n| policy.ejection_for(n).as_millis() as u64)
            .to_vec();
        assert_eq!(lengths, [5000, 10_000, 20_000, 40_000, 60_000, 60_000]);
    }
}
