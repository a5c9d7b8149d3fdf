//! The gateway file (`gateway/gateway.toml`, setting `SHOP_GATEWAY_FILE`): routes,
//! per-upstream policies, rate limits, API-key consumers, CORS. Like Kong's
//! declarative configuration, it is read and checked as a whole, at start and on each
//! reload: a mistake is refused with a message naming the entry and the field, and a
//! refused reload leaves the running configuration in place.
//!
//! What the file does not hold: the upstreams' addresses, which come from the
//! environment (`SHOP_UPSTREAMS__<NAME>`), so one file serves a laptop, compose and
//! Kubernetes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use figment::Figment;
use figment::providers::{Format as _, Toml};
use serde::Deserialize;

use shop_resilience::{BackoffSettings, BreakerSettings, BudgetSettings};

use crate::edge::apikeys::ConsumerSpec;
use crate::edge::cors::CorsSettings;
use crate::edge::headers::SecurityHeadersSettings;
use crate::edge::ratelimit::RateLimitSpec;
use crate::routes::{RouteSpec, RouteTable};
use crate::upstream::UpstreamPolicy;

/// The file as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    pub routes: Vec<RouteSpec>,
    /// Per upstream: balancing, health checks, ejection, breaker. An upstream without
    /// a section takes the defaults.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamSection>,
    /// How many retries the whole gateway may add to the traffic.
    #[serde(default)]
    pub retry_budget: BudgetSettings,
    /// The pause before each retry.
    #[serde(default)]
    pub retry_backoff: BackoffSettings,
    /// Named budgets the routes and consumers refer to.
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimitSpec>,
    /// Machine clients and their API keys (hashed).
    #[serde(default)]
    pub consumers: Vec<ConsumerSpec>,
    #[serde(default)]
    pub cors: CorsSettings,
    #[serde(default)]
    pub security_headers: SecurityHeadersSettings,
}

/// `[upstreams.<name>]`: the discovery and balancing policy, and the breaker.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct UpstreamSection {
    #[serde(flatten)]
    pub discovery: UpstreamPolicy,
    #[serde(default)]
    pub breaker: BreakerSettings,
    /// Whatever else was written: a flattened section cannot deny unknown keys itself,
    /// so they are collected here and refused by the check.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, figment::value::Value>,
}

impl GatewayFile {
    /// Reads the file (not yet checked against the environment: see [`Checked`]).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        Figment::from(Toml::file_exact(path))
            .extract()
            .with_context(|| format!("reading the gateway file {}", path.display()))
    }

    /// Parses the file's bytes, as read once by a reload.
    pub fn parse(bytes: &[u8], path: &Path) -> anyhow::Result<Self> {
        let text = std::str::from_utf8(bytes)
            .with_context(|| format!("the gateway file {} is not UTF-8", path.display()))?;
        Figment::from(Toml::string(text))
            .extract()
            .with_context(|| format!("reading the gateway file {}", path.display()))
    }
}

/// The file checked as a whole against the upstreams the environment defines.
#[derive(Debug, Clone)]
pub struct Checked {
    pub file: GatewayFile,
    pub routes: RouteTable,
}

impl Checked {
    pub fn new(file: GatewayFile, upstreams: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        for (name, section) in &file.upstreams {
            let place = format!("upstreams.{name}");
            if !upstreams.contains_key(name) {
                anyhow::bail!(
                    "[{place}]: no such upstream (SHOP_UPSTREAMS__{} is unset)",
                    name.to_uppercase()
                );
            }
            if let Some(key) = section.unknown.keys().next() {
                anyhow::bail!("[{place}]: unknown field `{key}`");
            }
            section
                .discovery
                .check()
                .with_context(|| format!("[{place}]"))?;
            section
                .breaker
                .check()
                .with_context(|| format!("[{place}.breaker]"))?;
        }
        file.retry_budget.check().context("[retry_budget]")?;
        file.retry_backoff.check().context("[retry_backoff]")?;
        for (name, limit) in &file.rate_limits {
            limit
                .check()
                .with_context(|| format!("[rate_limits.{name}]"))?;
        }
        let rate_limits: BTreeSet<String> = file.rate_limits.keys().cloned().collect();
        for (i, consumer) in file.consumers.iter().enumerate() {
            if let Some(limit) = &consumer.rate_limit
                && !rate_limits.contains(limit)
            {
                anyhow::bail!(
                    "consumers[{i}] ({:?}): `rate_limit` {limit:?} is not a key of [rate_limits]",
                    consumer.name
                );
            }
        }
        file.cors.check().context("[cors]")?;
        file.security_headers
            .check()
            .context("[security_headers]")?;
        let routes = RouteTable::check(file.routes.clone(), upstreams, &rate_limits)?;
        Ok(Self { file, routes })
    }

    /// Reads and checks `path`, naming it in any error.
    pub fn load(path: &Path, upstreams: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let file = GatewayFile::read(path)?;
        Self::new(file, upstreams).with_context(|| format!("in {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstreams() -> BTreeMap<String, String> {
        [
            "user",
            "catalog",
            "inventory",
            "order",
            "payment",
            "shipping",
        ]
        .into_iter()
        .map(|u| (u.to_owned(), format!("http://{u}")))
        .collect()
    }

    fn parse(toml: &str) -> anyhow::Result<Checked> {
        let file: GatewayFile = Figment::from(Toml::string(toml)).extract()?;
        Checked::new(file, &upstreams())
    }

    const ROUTE: &str = "[[routes]]\nname = \"p\"\nprefix = \"/p\"\nupstream = \"catalog\"\npolicy = \"public\"\ntimeout_ms = 1000\n";

    #[test]
    fn the_shipped_file_is_valid_and_routes_no_internal_path() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml");
        let checked = Checked::load(&path, &upstreams()).unwrap();
        let table = &checked.routes;
        assert!(table.find("/api/v1/internal/products/lookup").is_none());
        assert_eq!(
            table.find("/api/v1/products/p1").unwrap().upstream,
            "catalog"
        );
        assert_eq!(
            table.find("/api/v2/payments/pay_1").unwrap().upstream,
            "payment"
        );
        assert_eq!(
            table
                .find("/api/v1/auth/login")
                .unwrap()
                .rate_limit
                .as_deref(),
            Some("auth"),
            "login and register have the strict budget"
        );
    }

    #[test]
    fn a_bad_section_is_refused_naming_it() {
        let cases = [
            (
                format!("{ROUTE}[upstreams.catalog]\nbalance = \"random\"\n"),
                "random",
            ),
            (
                format!("{ROUTE}[upstreams.catalog]\nbalanse = \"round_robin\"\n"),
                "[upstreams.catalog]: unknown field `balanse`",
            ),
            (
                format!("{ROUTE}[upstreams.katalog]\n"),
                "[upstreams.katalog]: no such upstream",
            ),
            (
                format!("{ROUTE}[upstreams.catalog.breaker]\nfailure_ratio = 2.0\n"),
                "[upstreams.catalog.breaker]",
            ),
            (
                format!("{ROUTE}[retry_budget]\nratio = 5.0\n"),
                "[retry_budget]",
            ),
            (
                format!(
                    "{ROUTE}[[consumers]]\nname = \"feed\"\nkey_sha256 = \"{}\"\nrate_limit = \"nope\"\n",
                    "ab".repeat(32)
                ),
                "consumers[0] (\"feed\"): `rate_limit` \"nope\"",
            ),
            (format!("{ROUTE}[surprise]\n"), "surprise"),
        ];
        for (toml, expected) in cases {
            let error = match parse(&toml) {
                Ok(_) => panic!("accepted: {toml}"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }

    #[test]
    fn an_upstream_section_takes_its_policy_and_breaker() {
        let checked = parse(&format!(
            "{ROUTE}[upstreams.catalog]\nbalance = \"least_connections\"\n[upstreams.catalog.breaker]\nopen_ms = 1234\n"
        ))
        .unwrap();
        let section = &checked.file.upstreams["catalog"];
        assert_eq!(section.breaker.open_ms, 1234);
        assert_ne!(section.discovery, UpstreamPolicy::default());
    }
}
