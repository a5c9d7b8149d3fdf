//! The gateway's state: what lives as long as the process (settings, the token
//! verifier, the pooled upstream client, the retry budget, the docs portal) and the
//! [`Snapshot`] built from the gateway file, which a reload replaces whole.
//!
//! A request loads the current snapshot once and uses it to the end, so a reload never
//! mixes two configurations inside one request. Upstreams whose addresses and policies
//! did not change keep their object across a reload: instance health, ejections and the
//! circuit breaker's memory survive, and their background checks go on.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use shop_auth::Verifier;
use shop_resilience::{Backoff, BreakerSettings, CircuitBreaker, RetryBudget};

use crate::Settings;
use crate::docs::Portal;
use crate::edge::apikeys::ApiKeys;
use crate::edge::cors::Cors;
use crate::edge::headers::SecurityHeaders;
use crate::edge::ratelimit::RateLimits;
use crate::file::{Checked, GatewayFile};
use crate::routes::RouteTable;
use crate::upstream::{Resolve, Source, Upstream, UpstreamPolicy};

/// The body type the proxy sends upstream.
pub type UpstreamBody = http_body_util::combinators::UnsyncBoxBody<
    axum::body::Bytes,
    Box<dyn std::error::Error + Send + Sync>,
>;

/// The pooled client the proxy sends upstream with: one per serving core
/// (`crate::cores`), plus the gateway's own for requests that come without one.
pub type UpstreamClient = Client<HttpConnector, UpstreamBody>;

/// Who a request is from, as far as the gateway can trust it (`Gateway::hop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The client's address: the TCP peer's, or the one a trusted proxy forwarded.
    pub client: IpAddr,
    /// A trusted proxy received the request over HTTPS.
    pub https: bool,
    /// The host the client asked a trusted proxy for.
    pub host: Option<HeaderValue>,
}

/// One upstream: its instances (discovered and health-checked) and its breaker.
pub struct Backend {
    pub upstream: Arc<Upstream>,
    pub breaker: CircuitBreaker,
    /// What it was built from: an unchanged definition keeps the object on reload.
    definition: (Source, UpstreamPolicy, BreakerSettings),
}

/// Everything the gateway file decides, checked and built.
pub struct Snapshot {
    pub file: GatewayFile,
    pub routes: RouteTable,
    pub backends: HashMap<String, Arc<Backend>>,
    pub api_keys: ApiKeys,
    pub rate_limits: RateLimits,
    pub cors: Cors,
    pub security: SecurityHeaders,
    pub backoff: Backoff,
    pub budget: Arc<RetryBudget>,
}

/// The gateway: long-lived parts and the current snapshot.
pub struct Gateway {
    pub settings: Settings,
    pub verifier: Verifier,
    pub client: UpstreamClient,
    pub portal: Portal,
    resolver: Arc<dyn Resolve>,
    current: ArcSwap<Snapshot>,
    /// One reload at a time (a signal and the file watch can fire together), and the
    /// bytes of the file last looked at: the same bytes are not checked (or refused,
    /// and logged) again every few seconds.
    reloading: Mutex<Option<Vec<u8>>>,
}

impl Gateway {
    /// Reads and checks the gateway file and builds the first snapshot; any mistake
    /// stops the start, naming the place.
    pub fn new(
        settings: Settings,
        verifier: Verifier,
        resolver: Arc<dyn Resolve>,
    ) -> anyhow::Result<Self> {
        // The recorder first: building the snapshot sets gauges and registers counters.
        shop_http::observe::prometheus();
        let checked = Checked::load(&settings.gateway_file, &settings.upstreams)?;
        let snapshot = build(checked, &settings.upstreams, &resolver, None)
            .with_context(|| format!("in {}", settings.gateway_file.display()))?;
        let client = upstream_client(&settings);
        Ok(Self {
            settings,
            verifier,
            client,
            portal: Portal::new(Duration::from_secs(30)),
            resolver,
            current: ArcSwap::from_pointee(snapshot),
            reloading: Mutex::new(None),
        })
    }

    /// A new pooled client to the upstreams, with no connection yet: a serving core
    /// makes its own, so its connections live on its runtime.
    pub fn upstream_client(&self) -> UpstreamClient {
        upstream_client(&self.settings)
    }

    /// What the hop before the gateway says about a request from `peer`: nothing
    /// unless `peer` is a trusted proxy (`SHOP_TRUSTED_PROXIES`, e.g. the Ingress
    /// controller); then the client it names in `X-Forwarded-For` (the nearest entry
    /// that is not itself a trusted proxy), and the scheme and host the client used
    /// (`X-Forwarded-Proto`, `X-Forwarded-Host`) when the proxy terminated TLS.
    pub fn hop(&self, peer: IpAddr, headers: &HeaderMap) -> Hop {
        let trusted = &self.settings.trusted_proxies;
        if !trusted.iter().any(|proxy| proxy.contains(peer)) {
            return Hop {
                client: peer.to_canonical(),
                https: false,
                host: None,
            };
        }
        Hop {
            client: shop_http::client_ip::resolve_headers(peer, headers, trusted),
            https: headers
                .get("x-forwarded-proto")
                .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https")),
            host: headers.get("x-forwarded-host").cloned(),
        }
    }

    /// The configuration in force, for one request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Reads the gateway file again and, when it is valid, puts it in force. Returns
    /// whether anything changed; a refused file changes nothing.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let mut last_seen = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let path: &Path = &self.settings.gateway_file;
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the gateway file {}", path.display()))?;
        if last_seen.as_deref() == Some(bytes.as_slice()) {
            return Ok(false);
        }
        let file = GatewayFile::parse(&bytes, path);
        *last_seen = Some(bytes);
        let file = file?;
        let current = self.current.load_full();
        if file == current.file {
            return Ok(false);
        }
        let checked = Checked::new(file, &self.settings.upstreams)
            .with_context(|| format!("in {}", path.display()))?;
        let snapshot = build(
            checked,
            &self.settings.upstreams,
            &self.resolver,
            Some(&current),
        )
        .with_context(|| format!("in {}", path.display()))?;
        self.current.store(Arc::new(snapshot));
        Ok(true)
    }

    /// Whether `upstream` has an instance to send to (the docs portal asks).
    pub fn backend(&self, name: &str) -> Option<Arc<Backend>> {
        self.snapshot().backends.get(name).cloned()
    }
}

/// Pooled keep-alive connections to every instance: a request reuses an idle connection
/// instead of paying a TCP handshake. No cap on idle ones: an instance's
/// `max_connections` already bounds how many there can be, and closing the surplus of a
/// burst only to open it again at the next one is the churn that buries a slow instance
/// in connects.
fn upstream_client(settings: &Settings) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// Builds a snapshot, reusing the backends of `previous` whose definition is unchanged.
fn build(
    checked: Checked,
    addresses: &BTreeMap<String, String>,
    resolver: &Arc<dyn Resolve>,
    previous: Option<&Snapshot>,
) -> anyhow::Result<Snapshot> {
    let Checked { file, routes } = checked;
    let mut backends = HashMap::new();
    for (name, raw) in addresses {
        let source = Source::parse(raw)
            .with_context(|| format!("SHOP_UPSTREAMS__{} = {raw:?}", name.to_uppercase()))?;
        let section = file.upstreams.get(name).cloned().unwrap_or_default();
        let definition = (source, section.discovery, section.breaker);
        let reused = previous
            .and_then(|p| p.backends.get(name))
            .filter(|b| b.definition == definition)
            .cloned();
        let backend = match reused {
            Some(backend) => backend,
            None => {
                let upstream = Upstream::new(
                    name,
                    definition.0.clone(),
                    definition.1.clone(),
                    resolver.clone(),
                );
                upstream.start();
                let breaker = CircuitBreaker::new(name.clone(), definition.2.clone());
                Arc::new(Backend {
                    upstream,
                    breaker,
                    definition,
                })
            }
        };
        backends.insert(name.clone(), backend);
    }
    register_counters(&routes, &file, &backends);
    let budget = match previous {
        Some(p) if p.file.retry_budget == file.retry_budget => p.budget.clone(),
        _ => Arc::new(RetryBudget::new("gateway", &file.retry_budget)),
    };
    Ok(Snapshot {
        api_keys: ApiKeys::from_specs(&file.consumers).context("[[consumers]]")?,
        // Unchanged policies keep their clients' budgets: a reload is no fresh burst.
        rate_limits: match previous {
            Some(p) => p.rate_limits.reload(&file.rate_limits),
            None => RateLimits::from_specs(&file.rate_limits),
        }
        .context("[rate_limits]")?,
        cors: Cors::new(&file.cors),
        security: SecurityHeaders::new(&file.security_headers),
        backoff: Backoff::new(&file.retry_backoff),
        budget,
        backends,
        routes,
        file,
    })
}

/// The gateway's counters of rare events, each at 0 for every label set the
/// configuration gives it, so an alert's `increase()` works before the first
/// (and a scrape shows every name the dashboards use).
fn register_counters(
    routes: &RouteTable,
    file: &GatewayFile,
    backends: &HashMap<String, Arc<Backend>>,
) {
    for outcome in ["applied", "refused"] {
        metrics::counter!("gateway_config_reloads_total", "outcome" => outcome).increment(0);
    }
    for route in routes.routes() {
        metrics::counter!("gateway_retries_total", "route" => route.label.clone()).increment(0);
        if route.canary.is_some() {
            for track in ["stable", "canary"] {
                metrics::counter!("gateway_release_requests_total", "route" => route.label.clone(), "track" => track)
                    .increment(0);
            }
        }
    }
    for name in file.rate_limits.keys() {
        metrics::counter!("gateway_rate_limited_total", "policy" => name.clone()).increment(0);
    }
    for name in backends.keys() {
        metrics::counter!("gateway_upstream_queued_total", "upstream" => name.clone()).increment(0);
    }
}
