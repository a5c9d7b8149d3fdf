//! The one synchronous call of a checkout: the catalog's price lookup
//! (`POST /api/v1/internal/products/lookup`), asked for every product of an order at
//! once, for its current price, SKU, name and active flag.
//!
//! The catalog may run as several instances (`SHOP_UPSTREAMS__CATALOG` lists them).
//! Each instance has its own [`Resilient`] client: its own circuit breaker, retry
//! budget and per-attempt timeout, so one hung or dead instance opens its own breaker
//! and stops costing time while the others keep answering. A lookup starts at the next
//! instance in turn (round robin) and, if that instance fails after its retries (or its
//! breaker is open, which costs nothing), fails over to the next. Only when every
//! instance failed is the catalog unavailable: the checkout answers 503 with
//! `Retry-After` (the soonest an open breaker lets a probe through) and stores nothing.
//!
//! The lookup only reads, so retrying it, even after it may have reached the catalog,
//! is safe; a 5xx, a 429, a timeout or a broken connection is retried, a 4xx is the
//! catalog working (and our request wrong), never retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shop_resilience::{CallError, ResilienceSettings, Resilient, Verdict};
use tracing::Instrument as _;

/// The path of the lookup on every instance.
pub const LOOKUP_PATH: &str = "/api/v1/internal/products/lookup";

/// What the catalog says about one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogProduct {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub price: Price,
    /// An inactive product cannot be bought.
    pub active: bool,
}

/// A catalog price: integer minor units and an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub amount: i64,
    pub currency: String,
}

/// The lookup's answer: the products found and the ids that were not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    pub items: Vec<CatalogProduct>,
    #[serde(default)]
    pub not_found: Vec<String>,
}

#[derive(Serialize)]
struct LookupRequest<'a> {
    ids: &'a [&'a str],
}

/// Why a lookup gave no prices.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No instance answered: the checkout cannot go on now.
    #[error("no catalog instance answered the lookup")]
    Unavailable {
        /// When asking again may work.
        retry_after: Duration,
    },
    /// The catalog refused the request itself (a 4xx): our bug, not its outage.
    #[error("the catalog refused the lookup: {0}")]
    Refused(String),
}

/// How one attempt failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("undecodable answer: {0}")]
    Body(String),
}

/// A client of every catalog instance. Cheap to clone (clones share the breakers,
/// budgets and the round-robin position).
#[derive(Debug, Clone)]
pub struct Catalog {
    http: reqwest::Client,
    instances: Arc<[Instance]>,
    next: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Instance {
    lookup_url: String,
    client: Resilient,
}

impl Catalog {
    /// A client of the instances at `base_urls` (at least one), each with its own
    /// breaker and budget made from `settings`.
    pub fn new(base_urls: &[String], settings: &ResilienceSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(!base_urls.is_empty(), "no catalog instance to call");
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.timeout_ms))
            .build()?;
        let instances = base_urls
            .iter()
            .map(|base| {
                let host = base.split_once("://").map_or(base.as_str(), |(_, h)| h);
                Instance {
                    lookup_url: format!("{base}{LOOKUP_PATH}"),
                    client: Resilient::new(format!("catalog@{host}"), settings),
                }
            })
            .collect();
        Ok(Self {
            http,
            instances,
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The current price, SKU, name and active flag of each product, in one call.
    pub async fn lookup(&self, ids: &[&str]) -> Result<Lookup, LookupError> {
        let span =
            tracing::info_span!("catalog.lookup", otel.kind = "client", products = ids.len());
        self.lookup_in_turn(ids).instrument(span).await
    }

    async fn lookup_in_turn(&self, ids: &[&str]) -> Result<Lookup, LookupError> {
        let count = self.instances.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        // Retry-After: with every breaker open, when the soonest lets a probe
        // through; if some instance was actually tried and failed, a second.
        let mut open = 0;
        let mut soonest = Duration::MAX;
        for turn in 0..count {
            let instance = &self.instances[(first + turn) % count];
            let result = instance
                .client
                .call(|| self.attempt(&instance.lookup_url, ids), judge)
                .await;
            match result {
                Ok(lookup) => return Ok(lookup),
                Err(CallError::Failed(Failure::Status { status, body })) if is_refusal(status) => {
                    return Err(LookupError::Refused(format!("HTTP {status}: {body}")));
                }
                Err(CallError::Open { retry_after }) => {
                    tracing::debug!(catalog = %instance.client.name, "breaker open: next instance");
                    open += 1;
                    soonest = soonest.min(retry_after);
                }
                Err(e) => {
                    tracing::warn!(catalog = %instance.client.name, error = %e, "catalog lookup failed");
                }
            }
        }
        let retry_after = if open == count {
            soonest
        } else {
            Duration::from_secs(1)
        };
        Err(LookupError::Unavailable { retry_after })
    }

    async fn attempt(&self, url: &str, ids: &[&str]) -> Result<Lookup, Failure> {
        let mut headers = reqwest::header::HeaderMap::new();
        shop_telemetry::inject_current_context(&mut headers);
        let response = self
            .http
            .post(url)
            .headers(headers)
            .json(&LookupRequest { ids })
            .send()
            .await?;
        let status = response.status().as_u16();
        if status != 200 {
            let mut body = response.text().await.unwrap_or_default();
            body.truncate(500);
            return Err(Failure::Status { status, body });
        }
        let bytes = response.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| Failure::Body(e.to_string()))
    }
}

/// A 4xx other than 429: the catalog worked and refused our request.
fn is_refusal(status: u16) -> bool {
    (400..500).contains(&status) && status != 429
}

/// What one attempt says about the instance.
fn judge(result: &Result<Lookup, Failure>) -> Verdict {
    match result {
        Ok(_) => Verdict::Success,
        Err(Failure::Status { status, .. }) if is_refusal(*status) => Verdict::Success,
        Err(Failure::Status { .. } | Failure::Transport(_)) => Verdict::Failure { retryable: true },
        // A 200 we cannot read will not read better the second time.
        Err(Failure::Body(_)) => Verdict::Failure { retryable: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> Result<Lookup, Failure> {
        Err(Failure::Status {
            status,
            body: String::new(),
        })
    }

    #[test]
    fn server_errors_and_throttling_are_retried_and_client_errors_are_not() {
        assert_eq!(judge(&Ok(Lookup::default())), Verdict::Success);
        assert_eq!(judge(&status(422)), Verdict::Success);
        assert_eq!(judge(&status(404)), Verdict::Success);
        for retried in [500, 502, 503, 504, 429] {
            assert_eq!(
                judge(&status(retried)),
                Verdict::Failure { retryable: true },
                "{retried}"
            );
        }
        assert_eq!(
            judge(&Err(Failure::Body("eof".into()))),
            Verdict::Failure { retryable: false }
        );
    }
}
