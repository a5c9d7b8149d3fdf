//! Per-client rate limits, in named policies (`[rate_limits.<name>]` of the gateway
//! file) that routes and API-key consumers refer to.
//!
//! - The algorithm is governor's GCRA, a token bucket without a timer: a client may
//!   send `burst` requests at once, and gets one back every `per_seconds / requests`
//!   seconds. No fixed window means no double burst at a window's edge.
//! - A budget is kept per policy and client ([`ClientKey`]): routes that name one policy
//!   share it (login and register both draw on `auth`, so a guesser cannot alternate
//!   between them); a route that needs its own budget names its own policy.
//! - Memory stays bounded under a flood from many addresses: [`RateLimits::housekeeping`]
//!   forgets clients whose budget is full again (they are indistinguishable from new
//!   ones), and each policy tracks at most [`MAX_CLIENTS_PER_POLICY`] clients. Beyond
//!   that, clients it does not know yet share one overflow budget until housekeeping
//!   frees room: under such a flood new clients are slowed down together rather than
//!   the gateway running out of memory, and clients it already tracks keep their own.
//! - Every decision carries the IETF `RateLimit-Policy` and `RateLimit` fields
//!   (draft-ietf-httpapi-ratelimit-headers-11, May 2026); a refusal is a 429
//!   problem+json with `Retry-After`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::response::{IntoResponse as _, Response};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use shop_http::Problem;

use crate::edge::client::ClientKey;

/// The most clients one policy tracks; see the module docs for what happens beyond.
/// A tracked client costs 40 to 80 bytes (key, state, map slack), so a full policy
/// holds at most about 8 MB.
pub const MAX_CLIENTS_PER_POLICY: usize = 100_000;

/// How often the proxy should call [`RateLimits::housekeeping`]. A client is forgotten
/// one refill interval after its budget is full again, so this only decides how soon
/// room is made for new clients after a flood; each run walks every tracked client
/// (milliseconds for a full policy).
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(10);

/// The current service limit of the policy that applied (draft-ietf-httpapi-ratelimit-headers-11).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The quota policy that applied (draft-ietf-httpapi-ratelimit-headers-11).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

const MAX_REQUESTS: u32 = 1_000_000;
const MAX_PER_SECONDS: u32 = 86_400;

/// One `[rate_limits.<name>]` policy: `requests` per `per_seconds`, at most `burst` at
/// once. Defaults: 100 requests per 60 seconds, burst = requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSpec {
    /// Requests per window, 1 to 1,000,000.
    pub requests: u32,
    /// The window in seconds (1 = per second, 60 = per minute), 1 to 86,400.
    pub per_seconds: u32,
    /// Requests a client with a full budget may send at once; `requests` when unset.
    pub burst: Option<u32>,
}

impl Default for RateLimitSpec {
    fn default() -> Self {
        Self {
            requests: 100,
            per_seconds: 60,
            burst: None,
        }
    }
}

impl RateLimitSpec {
    pub fn check(&self) -> anyhow::Result<()> {
        if !(1..=MAX_REQUESTS).contains(&self.requests) {
            bail!("`requests` must be 1 to {MAX_REQUESTS}");
        }
        if !(1..=MAX_PER_SECONDS).contains(&self.per_seconds) {
            bail!("`per_seconds` must be 1 to {MAX_PER_SECONDS}");
        }
        if let Some(burst) = self.burst
            && !(1..=MAX_REQUESTS).contains(&burst)
        {
            bail!("`burst` must be 1 to {MAX_REQUESTS}");
        }
        Ok(())
    }

    fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.requests)
    }

    /// The time one request takes to come back.
    fn refill_every(&self) -> Duration {
        Duration::from_secs(u64::from(self.per_seconds)) / self.requests
    }
}

/// Every policy, by name. `C` is the clock: real time in the gateway, governor's fake
/// clock in tests.
pub struct RateLimits<C: Clock = MonotonicClock> {
    policies: HashMap<String, Arc<Policy<C>>>,
    clock: C,
    max_clients: usize,
}

struct Policy<C: Clock> {
    spec: RateLimitSpec,
    refill_every: Duration,
    limiter: RateLimiter<ClientKey, ClientStates, C, StateInformationMiddleware>,
    advertised: Arc<Advertised>,
}

/// What a decision tells the client about its policy.
#[derive(Debug)]
struct Advertised {
    name: String,
    requests: u32,
    /// `"<name>";q=<requests>;w=<per_seconds>`, the same on every response.
    policy_field: HeaderValue,
}

impl RateLimits<MonotonicClock> {
    /// Checks every policy, naming it in any error.
    pub fn from_specs(specs: &BTreeMap<String, RateLimitSpec>) -> anyhow::Result<Self> {
        Self::with_clock(specs, MonotonicClock)
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    pub fn with_clock(specs: &BTreeMap<String, RateLimitSpec>, clock: C) -> anyhow::Result<Self> {
        Self::build(specs, clock, MAX_CLIENTS_PER_POLICY, &HashMap::new())
    }

    /// The policies of a reloaded file. A policy whose settings did not change keeps
    /// its clients' budgets (a reload must not hand everyone a fresh burst); a new or
    /// changed one starts empty.
    pub fn reload(&self, specs: &BTreeMap<String, RateLimitSpec>) -> anyhow::Result<Self> {
        Self::build(specs, self.clock.clone(), self.max_clients, &self.policies)
    }

    fn build(
        specs: &BTreeMap<String, RateLimitSpec>,
        clock: C,
        max_clients: usize,
        previous: &HashMap<String, Arc<Policy<C>>>,
    ) -> anyhow::Result<Self> {
        let mut policies = HashMap::with_capacity(specs.len());
        for (name, spec) in specs {
            let place = format!("rate_limits.{name}");
            // The name goes into a quoted header string and a metric label as it is.
            let name_ok = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                bail!("{place}: the name must be 1 to 64 letters, digits, `-` or `_`");
            }
            spec.check().with_context(|| place.clone())?;
            let policy = match previous.get(name) {
                Some(kept) if kept.spec == *spec => Arc::clone(kept),
                _ => Arc::new(Policy::new(name, spec, clock.clone(), max_clients)?),
            };
            policies.insert(name.clone(), policy);
        }
        Ok(Self {
            policies,
            clock,
            max_clients,
        })
    }

    /// Counts one request of `client` against `policy`. An unknown policy limits
    /// nothing and advertises nothing; the file check ([`RateLimits::names`]) refuses
    /// a route or consumer naming one, so it cannot happen with a checked file.
    pub fn check(&self, policy: &str, client: &ClientKey) -> Decision {
        let Some(policy) = self.policies.get(policy) else {
            tracing::error!(policy, "unknown rate limit policy: not limiting");
            return Decision::unlimited();
        };
        policy.check(client)
    }

    /// Forgets the clients whose budget is full again and returns the memory; call it
    /// every [`HOUSEKEEPING_EVERY`]. Also reports `gateway_rate_limit_clients{policy}`.
    pub fn housekeeping(&self) {
        for (name, policy) in &self.policies {
            policy.limiter.retain_recent();
            policy.limiter.shrink_to_fit();
            metrics::gauge!("gateway_rate_limit_clients", "policy" => name.clone())
                .set(policy.limiter.len() as f64);
        }
    }

    /// The policy names, for checking the routes and consumers that refer to them.
    pub fn names(&self) -> BTreeSet<String> {
        self.policies.keys().cloned().collect()
    }

    /// How many clients `policy` tracks now.
    pub fn tracked_clients(&self, policy: &str) -> Option<usize> {
        self.policies.get(policy).map(|p| p.limiter.len())
    }
}

impl<C: Clock> std::fmt::Debug for RateLimits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let specs: BTreeMap<&str, &RateLimitSpec> = self
            .policies
            .iter()
            .map(|(name, p)| (name.as_str(), &p.spec))
            .collect();
        f.debug_struct("RateLimits")
            .field("policies", &specs)
            .finish()
    }
}

impl<C: Clock> Policy<C> {
    fn new(name: &str, spec: &RateLimitSpec, clock: C, max_clients: usize) -> anyhow::Result<Self> {
        let refill_every = spec.refill_every();
        let burst = NonZeroU32::new(spec.burst()).context("`burst` must not be 0")?;
        let quota = Quota::with_period(refill_every)
            .context("`requests` per `per_seconds` is too fast")?
            .allow_burst(burst);
        let limiter = RateLimiter::<_, _, _, StateInformationMiddleware>::new(
            quota,
            ClientStates::new(max_clients),
            clock,
        );
        let policy_field = HeaderValue::try_from(format!(
            "\"{name}\";q={};w={}",
            spec.requests, spec.per_seconds
        ))
        .context("the policy cannot be advertised")?;
        Ok(Self {
            spec: spec.clone(),
            refill_every,
            limiter,
            advertised: Arc::new(Advertised {
                name: name.to_owned(),
                requests: spec.requests,
                policy_field,
            }),
        })
    }

    fn check(&self, client: &ClientKey) -> Decision {
        let advertised = Some(Arc::clone(&self.advertised));
        match self.limiter.check_key(client) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                // The budget is full again once every request it is missing has come
                // back (an upper bound by less than one refill: the snapshot does not
                // say how far the next one has come).
                let missing = self.spec.burst().saturating_sub(remaining);
                Decision {
                    advertised,
                    allowed: true,
                    remaining,
                    reset_secs: whole_seconds(self.refill_every * missing),
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                let name = &self.advertised.name;
                tracing::debug!(policy = %name, client = %client, "rate limited");
                metrics::counter!("gateway_rate_limited_total", "policy" => name.clone())
                    .increment(1);
                Decision {
                    advertised,
                    allowed: false,
                    remaining: 0,
                    reset_secs: whole_seconds(wait).max(1),
                }
            }
        }
    }
}

/// Rounded up: a client told to wait 0 seconds would come back too early.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The outcome of one [`RateLimits::check`].
#[derive(Debug, Clone)]
pub struct Decision {
    advertised: Option<Arc<Advertised>>,
    allowed: bool,
    remaining: u32,
    /// Allowed: seconds until the whole budget is back. Refused: seconds until the next
    /// request may pass (also the `Retry-After`).
    reset_secs: u64,
}

impl Decision {
    fn unlimited() -> Self {
        Self {
            advertised: None,
            allowed: true,
            remaining: 0,
            reset_secs: 0,
        }
    }

    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The policy's name (`None` when it limited nothing).
    pub fn policy(&self) -> Option<&str> {
        self.advertised.as_deref().map(|a| a.name.as_str())
    }

    /// The policy's `requests` per window (0 when it limited nothing).
    pub fn limit(&self) -> u32 {
        self.advertised.as_deref().map_or(0, |a| a.requests)
    }

    /// Requests the client may still send at once.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// See the field: until the budget is whole again, or until the next request.
    pub fn reset_secs(&self) -> u64 {
        self.reset_secs
    }

    /// Whole seconds, at least 1, when refused.
    pub fn retry_after_secs(&self) -> Option<u64> {
        (!self.allowed).then_some(self.reset_secs)
    }

    /// Appends `RateLimit-Policy: "<name>";q=<requests>;w=<per_seconds>` and
    /// `RateLimit: "<name>";r=<remaining>;t=<seconds>`: appended, not set, because both
    /// are lists and an upstream may advertise its own policies beside ours.
    ///
    /// `t` is the draft's "effective window": for a refusal, the wait until the next
    /// request may pass (equal to `Retry-After`, which the draft says must not end
    /// before the window); otherwise the time until the whole budget is back, so a
    /// client that spreads `r` requests over `t` seconds is never refused.
    pub fn headers(&self, headers: &mut HeaderMap) {
        let Some(advertised) = &self.advertised else {
            return;
        };
        headers.append(RATELIMIT_POLICY, advertised.policy_field.clone());
        let limit = format!(
            "\"{}\";r={};t={}",
            advertised.name, self.remaining, self.reset_secs
        );
        if let Ok(value) = HeaderValue::try_from(limit) {
            headers.append(RATELIMIT, value);
        }
    }

    /// The 429 for a refused decision: problem+json (`too-many-requests`) with
    /// `Retry-After` and the same fields as [`Decision::headers`].
    pub fn refusal(&self) -> Response {
        let retry_after = self.reset_secs.max(1);
        let detail = match self.advertised.as_deref() {
            Some(a) => format!(
                "The `{}` rate limit is spent; try again in {retry_after} s.",
                a.name
            ),
            None => format!("Try again in {retry_after} s."),
        };
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests.",
        )
        .with_detail(detail)
        .with_retry_after(retry_after)
        .into_response();
        self.headers(response.headers_mut());
        response
    }
}

/// The clients' GCRA states (the theoretical arrival time, in nanoseconds since the
/// limiter started; 0 for a fresh client), at most `max_clients` of them, and the one
/// overflow state every client shares that arrives when the map is full.
///
/// governor's own DashMap store grows without a bound and cannot tell whether a key
/// is known without adding it, so the cap lives here: a slot is reserved with one
/// atomic add before a client is inserted, which keeps the count exact however many
/// requests race for the last slot.
struct ClientStates {
    states: DashMap<ClientKey, AtomicU64>,
    tracked: AtomicUsize,
    max_clients: usize,
    overflow: AtomicU64,
}

impl ClientStates {
    fn new(max_clients: usize) -> Self {
        Self {
            states: DashMap::new(),
            tracked: AtomicUsize::new(0),
            max_clients,
            overflow: AtomicU64::new(0),
        }
    }

    fn reserve_slot(&self) -> bool {
        if self.tracked.fetch_add(1, Ordering::AcqRel) < self.max_clients {
            true
        } else {
            self.tracked.fetch_sub(1, Ordering::AcqRel);
            false
        }
    }
}

/// governor's decision step on one state: `decide` sees the current arrival time and
/// returns the new one, which is stored only if no other request changed it meanwhile
/// (otherwise it decides again on the fresh value).
fn measure<T, E>(
    state: &AtomicU64,
    decide: impl Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
) -> Result<T, E> {
    let mut seen = state.load(Ordering::Acquire);
    loop {
        let (outcome, next) = decide(NonZeroU64::new(seen).map(|n| Nanos::new(n.get())))?;
        let swapped =
            state.compare_exchange_weak(seen, next.as_u64(), Ordering::Release, Ordering::Acquire);
        match swapped {
            Ok(_) => return Ok(outcome),
            Err(now_seen) => seen = now_seen,
        }
    }
}

impl StateStore for ClientStates {
    type Key = ClientKey;

    fn measure_and_replace<T, F, E>(&self, key: &ClientKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(state) = self.states.get(key) {
            return measure(&state, f);
        }
        if !self.reserve_slot() {
            return measure(&self.overflow, f);
        }
        match self.states.entry(key.clone()) {
            // Another request of this client inserted it first: give the slot back.
            Entry::Occupied(known) => {
                self.tracked.fetch_sub(1, Ordering::AcqRel);
                measure(known.get(), f)
            }
            Entry::Vacant(new) => measure(&new.insert(AtomicU64::new(0)), f),
        }
    }
}

impl ShrinkableKeyedStateStore<ClientKey> for ClientStates {
    fn retain_recent(&self, drop_below: Nanos) {
        let mut dropped = 0;
        self.states.retain(|_, state| {
            let keep = state.load(Ordering::Relaxed) > drop_below.as_u64();
            dropped += usize::from(!keep);
            keep
        });
        self.tracked.fetch_sub(dropped, Ordering::AcqRel);
    }

    fn shrink_to_fit(&self) {
        self.states.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.tracked.load(Ordering::Acquire)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn spec(requests: u32, per_seconds: u32, burst: Option<u32>) -> RateLimitSpec {
        RateLimitSpec {
            requests,
            per_seconds,
            burst,
        }
    }

    /// `default`: 3 per minute; `auth`: 2 per minute; on a clock that moves only when told.
    fn limits() -> (RateLimits<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let specs = BTreeMap::from([
            ("default".to_owned(), spec(3, 60, None)),
            ("auth".to_owned(), spec(2, 60, None)),
        ]);
        (
            RateLimits::with_clock(&specs, clock.clone()).unwrap(),
            clock,
        )
    }

    fn ip(s: &str) -> ClientKey {
        ClientKey::ip(s.parse().unwrap())
    }

    fn allowed_in_a_row(
        limits: &RateLimits<FakeRelativeClock>,
        policy: &str,
        client: &ClientKey,
    ) -> u32 {
        let mut n = 0;
        while limits.check(policy, client).allowed() {
            n += 1;
            assert!(n <= 1000, "never refused");
        }
        n
    }

    #[test]
    fn a_client_gets_exactly_its_burst_then_a_429_with_retry_after_and_the_ratelimit_fields() {
        let (limits, _clock) = limits();
        let client = ip("192.0.2.1");
        let remaining: Vec<u32> = (0..3)
            .map(|_| {
                let decision = limits.check("default", &client);
                assert!(decision.allowed());
                decision.remaining()
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);

        let refused = limits.check("default", &client);
        assert!(!refused.allowed());
        assert_eq!(refused.limit(), 3);
        // One request comes back every 20 s.
        assert_eq!(refused.retry_after_secs(), Some(20));
        let response = refused.refusal();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = response.headers();
        assert_eq!(
            headers[http::header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(headers[http::header::RETRY_AFTER], "20");
        assert_eq!(headers[RATELIMIT_POLICY], "\"default\";q=3;w=60");
        assert_eq!(headers[RATELIMIT], "\"default\";r=0;t=20");
    }

    #[tokio::test]
    async fn the_refusal_is_a_problem_document_that_names_only_the_policy() {
        let (limits, _clock) = limits();
        let client = ip("192.0.2.1");
        allowed_in_a_row(&limits, "auth", &client);
        let response = limits.check("auth", &client).refusal();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["type"], "urn:shop:problem:too-many-requests");
        assert_eq!(problem["status"], 429);
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("`auth`"), "{detail}");
        assert!(!detail.contains("192.0.2.1"), "{detail}");
    }

    #[test]
    fn an_allowed_request_advertises_what_is_left_and_when_the_budget_is_whole() {
        let (limits, _clock) = limits();
        let first = limits.check("default", &ip("192.0.2.1"));
        assert_eq!(first.retry_after_secs(), None);
        let mut headers = HeaderMap::new();
        first.headers(&mut headers);
        assert_eq!(headers[RATELIMIT_POLICY], "\"default\";q=3;w=60");
        // One request spent, back in 20 s.
        assert_eq!(headers[RATELIMIT], "\"default\";r=2;t=20");
        let second = limits.check("default", &ip("192.0.2.1"));
        assert_eq!((second.remaining(), second.reset_secs()), (1, 40));
    }

    #[test]
    fn fields_are_appended_beside_an_upstreams_own() {
        let (limits, _clock) = limits();
        let mut headers = HeaderMap::new();
        headers.insert(RATELIMIT, HeaderValue::from_static("\"orders\";r=5;t=1"));
        limits
            .check("default", &ip("192.0.2.1"))
            .headers(&mut headers);
        assert_eq!(headers.get_all(RATELIMIT).iter().count(), 2);
    }

    #[test]
    fn two_clients_have_separate_budgets() {
        let (limits, _clock) = limits();
        assert_eq!(allowed_in_a_row(&limits, "default", &ip("192.0.2.1")), 3);
        assert_eq!(allowed_in_a_row(&limits, "default", &ip("192.0.2.2")), 3);
        let user = ClientKey::user(uuid::Uuid::from_u128(7));
        assert_eq!(allowed_in_a_row(&limits, "default", &user), 3);
    }

    #[test]
    fn one_policys_budget_is_independent_of_anothers() {
        let (limits, _clock) = limits();
        let client = ip("192.0.2.1");
        assert_eq!(allowed_in_a_row(&limits, "auth", &client), 2);
        assert_eq!(allowed_in_a_row(&limits, "default", &client), 3);
        assert!(!limits.check("auth", &client).allowed());
    }

    #[test]
    fn addresses_of_one_ipv6_64_share_a_budget() {
        let (limits, _clock) = limits();
        let hosts = ["2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:abcd::9"];
        for host in hosts {
            assert!(limits.check("default", &ip(host)).allowed(), "{host}");
        }
        assert!(!limits.check("default", &ip("2001:db8:0:1::ffff")).allowed());
        assert!(limits.check("default", &ip("2001:db8:0:2::1")).allowed());
    }

    #[test]
    fn a_spent_budget_refills_one_request_per_interval() {
        let (limits, clock) = limits();
        let client = ip("192.0.2.1");
        allowed_in_a_row(&limits, "default", &client);
        clock.advance(Duration::from_secs(19));
        let early = limits.check("default", &client);
        assert_eq!(early.retry_after_secs(), Some(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(allowed_in_a_row(&limits, "default", &client), 1);
        clock.advance(Duration::from_secs(60));
        assert_eq!(allowed_in_a_row(&limits, "default", &client), 3);
    }

    #[test]
    fn a_burst_can_differ_from_the_rate() {
        let clock = FakeRelativeClock::default();
        let specs = BTreeMap::from([("partner".to_owned(), spec(60, 60, Some(10)))]);
        let limits = RateLimits::with_clock(&specs, clock.clone()).unwrap();
        let client = ip("192.0.2.1");
        assert_eq!(allowed_in_a_row(&limits, "partner", &client), 10);
        clock.advance(Duration::from_secs(1));
        assert_eq!(allowed_in_a_row(&limits, "partner", &client), 1);
    }

    #[test]
    fn the_tracked_clients_stay_capped_under_200k_addresses_and_the_rest_share_one_budget() {
        let (limits, _clock) = limits();
        let mut allowed = 0;
        for i in 0..200_000u32 {
            let client = ClientKey::ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
            allowed += u32::from(limits.check("default", &client).allowed());
        }
        assert_eq!(
            limits.tracked_clients("default"),
            Some(MAX_CLIENTS_PER_POLICY)
        );
        // Every tracked client had its own budget; the other 100,000 shared one burst.
        assert_eq!(allowed, MAX_CLIENTS_PER_POLICY as u32 + 3);
        // A tracked client keeps its own budget while newcomers wait.
        let first = ClientKey::ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000)));
        assert_eq!(limits.check("default", &first).remaining(), 1);
        assert!(!limits.check("default", &ip("198.51.100.1")).allowed());
        assert_eq!(limits.tracked_clients("auth"), Some(0));
    }

    #[test]
    fn housekeeping_forgets_clients_whose_budget_is_whole_again_and_makes_room() {
        let (limits, clock) = limits();
        let idle = ip("192.0.2.1");
        let busy = ip("192.0.2.2");
        limits.check("default", &idle);
        allowed_in_a_row(&limits, "default", &busy);
        clock.advance(Duration::from_secs(45));
        limits.housekeeping();
        assert_eq!(
            limits.tracked_clients("default"),
            Some(1),
            "the busy one is still owed requests"
        );
        clock.advance(Duration::from_secs(40));
        limits.housekeeping();
        assert_eq!(limits.tracked_clients("default"), Some(0));
        // Forgetting is safe: it comes back with the budget it had earned anyway.
        assert_eq!(allowed_in_a_row(&limits, "default", &busy), 3);
    }

    #[test]
    fn a_reload_keeps_the_budgets_of_unchanged_policies_only() {
        let (limits, _clock) = limits();
        let client = ip("192.0.2.1");
        allowed_in_a_row(&limits, "default", &client);
        allowed_in_a_row(&limits, "auth", &client);
        let reloaded = limits
            .reload(&BTreeMap::from([
                ("default".to_owned(), spec(3, 60, None)),
                ("auth".to_owned(), spec(5, 60, None)),
            ]))
            .unwrap();
        assert!(!reloaded.check("default", &client).allowed());
        assert_eq!(allowed_in_a_row(&reloaded, "auth", &client), 5);
    }

    #[test]
    fn an_unknown_policy_limits_nothing_and_advertises_nothing() {
        let (limits, _clock) = limits();
        let decision = limits.check("nope", &ip("192.0.2.1"));
        assert!(decision.allowed());
        let mut headers = HeaderMap::new();
        decision.headers(&mut headers);
        assert!(headers.is_empty());
        assert_eq!(
            limits.names(),
            BTreeSet::from(["auth".to_owned(), "default".to_owned()])
        );
    }

    #[test]
    fn bad_policies_are_refused_naming_the_policy_and_the_field() {
        let cases = [
            (
                "default",
                spec(0, 60, None),
                "rate_limits.default: `requests`",
            ),
            (
                "default",
                spec(10, 0, None),
                "rate_limits.default: `per_seconds`",
            ),
            (
                "default",
                spec(10, 90_000, None),
                "rate_limits.default: `per_seconds`",
            ),
            ("auth", spec(10, 60, Some(0)), "rate_limits.auth: `burst`"),
            (
                "bad name",
                spec(10, 60, None),
                "rate_limits.bad name: the name",
            ),
            ("quo\"te", spec(10, 60, None), "the name"),
        ];
        for (name, spec, expected) in cases {
            let specs = BTreeMap::from([(name.to_owned(), spec)]);
            let error = format!("{:#}", RateLimits::from_specs(&specs).unwrap_err());
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }

    #[test]
    fn a_policy_reads_from_toml_with_defaults_and_refuses_unknown_fields() {
        let read = |toml: &str| -> Result<RateLimitSpec, figment::Error> {
            use figment::providers::Format as _;
            figment::Figment::from(figment::providers::Toml::string(toml)).extract()
        };
        let auth = read("requests = 10").unwrap();
        assert_eq!(auth, spec(10, 60, None));
        assert!(read("requests = 10\nper_minute = 1").is_err());
    }
}
