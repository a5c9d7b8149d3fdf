//! Whether an instance may take requests, from two kinds of evidence:
//!
//! - **active checks**: the upstream's loop GETs the health path of every instance each
//!   interval; `unhealthy_after` failures in a row take it out, `healthy_after` passes put
//!   it back. Before its first check an instance counts as healthy, so a gateway starting
//!   beside its upstreams does not refuse everything for the first interval.
//! - **passive ejection**: `eject_after` failures of real traffic in a row (reported by
//!   the proxy) eject it for `ejection_ms`, doubled at each repeat up to
//!   `max_ejection_ms`; an instance that then stays in as long as its last ejection
//!   lasted is forgiven and starts again from `ejection_ms`.
//!
//! An instance is *available* when it is healthy and not ejected. The two are independent
//! (passing checks do not end an ejection early: the checks ask `/readyz`, the ejection
//! answers what real requests met). The picking path only reads atomics; the counters
//! behind the transitions sit behind a small per-instance mutex, so the logs and metrics
//! of a transition are written exactly once.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::header::USER_AGENT;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use super::{Instance, UpstreamPolicy};

/// Milliseconds since the upstream was created, on tokio's clock (so tests can pause
/// it). Ejection deadlines are stored as such numbers in atomics.
#[derive(Debug)]
pub(crate) struct Clock(tokio::time::Instant);

impl Clock {
    pub(crate) fn new() -> Self {
        Self(tokio::time::Instant::now())
    }

    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// One instance and everything known about it.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) instance: Instance,
    label: String,
    pub(crate) in_flight: AtomicUsize,
    /// One permit per request allowed in flight at once (`max_connections`).
    pub(crate) slots: Arc<Semaphore>,
    healthy: AtomicBool,
    /// When the current ejection ends (`Clock` milliseconds); 0: not ejected.
    ejected_until: AtomicU64,
    /// Failures of real traffic in a row.
    errors: AtomicU32,
    ledger: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    passes: u32,
    fails: u32,
    /// Ejections not yet forgiven: the next one lasts `ejection_ms * 2^ejections`.
    ejections: u32,
    returned_at: Option<u64>,
}

impl Member {
    pub(crate) fn new(instance: Instance, max_connections: u32) -> Self {
        Self {
            label: instance.to_string(),
            instance,
            in_flight: AtomicUsize::new(0),
            slots: Arc::new(Semaphore::new(max_connections as usize)),
            healthy: AtomicBool::new(true),
            ejected_until: AtomicU64::new(0),
            errors: AtomicU32::new(0),
            ledger: Mutex::new(Ledger::default()),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// An ejection whose time is over no longer counts, even before [`Member::settle`]
    /// has noticed it.
    pub(crate) fn is_ejected(&self, now: u64) -> bool {
        now < self.ejected_until.load(Ordering::Relaxed)
    }

    pub(crate) fn is_available(&self, now: u64) -> bool {
        self.is_healthy() && !self.is_ejected(now)
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets `gateway_upstream_instance_up` to what it is now.
    pub(crate) fn publish(&self, upstream: &str, now: u64) {
        self.set_gauge(upstream, self.is_available(now));
    }

    /// A new instance's ejection counter, at 0 until its first ejection.
    pub(crate) fn register(&self, upstream: &str) {
        let labels = [
            ("upstream", upstream.to_owned()),
            ("instance", self.label.clone()),
        ];
        metrics::counter!("gateway_upstream_ejections_total", &labels).increment(0);
    }

    pub(crate) fn set_gauge(&self, upstream: &str, up: bool) {
        let labels = [
            ("upstream", upstream.to_owned()),
            ("instance", self.label.clone()),
        ];
        metrics::gauge!("gateway_upstream_instance_up", &labels).set(if up { 1.0 } else { 0.0 });
    }

    /// The result of one active check.
    pub(crate) fn checked(&self, upstream: &str, policy: &UpstreamPolicy, result: Probe, now: u64) {
        let mut ledger = self.ledger();
        match result {
            Ok(()) => {
                ledger.fails = 0;
                ledger.passes = ledger.passes.saturating_add(1);
                if !self.is_healthy() && ledger.passes >= policy.healthy_after {
                    self.healthy.store(true, Ordering::Relaxed);
                    tracing::info!(
                        upstream,
                        instance = %self.label,
                        passes = ledger.passes,
                        available = !self.is_ejected(now),
                        "instance passed its health checks again"
                    );
                    self.publish(upstream, now);
                }
            }
            Err(reason) => {
                ledger.passes = 0;
                ledger.fails = ledger.fails.saturating_add(1);
                if self.is_healthy() && ledger.fails >= policy.unhealthy_after {
                    self.healthy.store(false, Ordering::Relaxed);
                    tracing::warn!(
                        upstream,
                        instance = %self.label,
                        fails = ledger.fails,
                        %reason,
                        "instance failed its health checks: taken out"
                    );
                    self.publish(upstream, now);
                }
            }
        }
    }

    /// A request that went well: the failure streak is over. Lock-free, as it runs for
    /// nearly every request.
    pub(crate) fn succeeded(&self) {
        if self.errors.load(Ordering::Relaxed) != 0 {
            self.errors.store(0, Ordering::Relaxed);
        }
    }

    /// A request that failed; true when the streak has reached `eject_after` and the
    /// instance is not ejected yet (the caller decides whether it may be).
    pub(crate) fn failed(&self, policy: &UpstreamPolicy, now: u64) -> bool {
        let errors = self
            .errors
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        errors >= policy.eject_after && !self.is_ejected(now)
    }

    /// Takes the instance out for its next ejection time.
    pub(crate) fn eject(&self, upstream: &str, policy: &UpstreamPolicy, now: u64) {
        let mut ledger = self.ledger();
        let length = policy.ejection_for(ledger.ejections);
        ledger.ejections = ledger.ejections.saturating_add(1);
        ledger.returned_at = None;
        let until = now.saturating_add(u64::try_from(length.as_millis()).unwrap_or(u64::MAX));
        self.ejected_until.store(until.max(1), Ordering::Relaxed);
        let errors = self.errors.swap(0, Ordering::Relaxed);
        tracing::warn!(
            upstream,
            instance = %self.label,
            errors,
            ejection_ms = length.as_millis() as u64,
            "instance ejected after failed requests: taken out"
        );
        let labels = [
            ("upstream", upstream.to_owned()),
            ("instance", self.label.clone()),
        ];
        metrics::counter!("gateway_upstream_ejections_total", &labels).increment(1);
        self.publish(upstream, now);
    }

    /// Notices an ejection that is over (logs it, resets the failure streak) and forgives
    /// an instance that has stayed in as long as its last ejection lasted.
    pub(crate) fn settle(&self, upstream: &str, policy: &UpstreamPolicy, now: u64) {
        let until = self.ejected_until.load(Ordering::Relaxed);
        let mut ledger = self.ledger();
        if until != 0 && now >= until {
            self.ejected_until.store(0, Ordering::Relaxed);
            self.errors.store(0, Ordering::Relaxed);
            // When it ended, not when it was noticed: forgiveness counts from there.
            ledger.returned_at = Some(until);
            tracing::info!(
                upstream,
                instance = %self.label,
                available = self.is_healthy(),
                "instance's ejection is over"
            );
            self.publish(upstream, now);
        }
        if let Some(returned) = ledger.returned_at {
            let last = policy.ejection_for(ledger.ejections.saturating_sub(1));
            if Duration::from_millis(now.saturating_sub(returned)) >= last {
                ledger.ejections = 0;
                ledger.returned_at = None;
            }
        }
    }
}

/// May `member` be ejected now? Not beyond `max_ejected_percent` of the instances, and
/// never the last available one: passive evidence is noisy (one bad client can fail
/// requests everywhere), so it may thin an upstream out but not empty it.
pub(crate) fn may_eject(
    members: &[Arc<Member>],
    member: &Arc<Member>,
    policy: &UpstreamPolicy,
    now: u64,
) -> Result<(), &'static str> {
    let ejected = members.iter().filter(|m| m.is_ejected(now)).count();
    if (ejected + 1) * 100 > usize::from(policy.max_ejected_percent) * members.len() {
        return Err("max_ejected_percent reached");
    }
    let others = members
        .iter()
        .filter(|m| !Arc::ptr_eq(m, member) && m.is_available(now))
        .count();
    if others == 0 {
        return Err("it is the last available instance");
    }
    Ok(())
}

/// The result of one check: `Err` says why it failed.
pub(crate) type Probe = Result<(), String>;

pub(crate) type HealthClient = Client<HttpConnector, Empty<Bytes>>;

/// The checks' own client: no pooled connections, so each check also proves the
/// instance still accepts new ones (an instance that stopped listening fails at once,
/// even while an old keep-alive connection lingers).
pub(crate) fn client(timeout: Duration) -> HealthClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(timeout));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector)
}

/// GETs `path` on `instance`; a 2xx within `timeout` passes.
pub(crate) async fn probe(
    client: &HealthClient,
    instance: &Instance,
    path: &str,
    timeout: Duration,
) -> Probe {
    let uri = instance.uri(path).map_err(|e| e.to_string())?;
    let request = http::Request::get(uri)
        .header(USER_AGENT, "shop-gateway-health-check")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        Ok(Err(e)) => {
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            Err(cause.map_or_else(|| e.to_string(), |cause| format!("{e}: {cause}")))
        }
        Ok(Ok(answer)) if answer.status().is_success() => Ok(()),
        Ok(Ok(answer)) => Err(format!("answered {}", answer.status())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{
        TestServer, eventually, fast_policy, lease_on, picks, upstream_of,
    };
    use super::super::{Balance, Outcome, Source, SystemResolver, Upstream, UpstreamPolicy};
    use super::*;

    fn ejecting(eject_after: u32, max_ejected_percent: u8) -> UpstreamPolicy {
        UpstreamPolicy {
            balance: Balance::RoundRobin,
            eject_after,
            ejection_ms: 1000,
            max_ejection_ms: 10_000,
            max_ejected_percent,
            ..UpstreamPolicy::default()
        }
    }

    fn fail(upstream: &Arc<Upstream>, authority: &str, times: usize) {
        for _ in 0..times {
            lease_on(upstream, authority).report(Outcome::Failure);
        }
    }

    fn ejected(upstream: &Upstream, authority: &str) -> bool {
        let statuses = upstream.statuses();
        let status = statuses
            .iter()
            .find(|s| s.instance.to_string() == authority);
        status.expect("a known instance").ejected
    }

    async fn pass(time_ms: u64) {
        tokio::time::advance(Duration::from_millis(time_ms)).await;
    }

    fn static_upstream(servers: &[&TestServer], policy: UpstreamPolicy) -> Arc<Upstream> {
        let instances = servers
            .iter()
            .map(|s| Instance::parse(&format!("http://{}", s.addr)).unwrap())
            .collect();
        Upstream::new(
            "test",
            Source::Static(instances),
            policy,
            Arc::new(SystemResolver),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn eject_after_failed_requests_in_a_row_eject_an_instance_until_its_time_is_over() {
        let upstream = upstream_of(&["a:1", "b:2"], ejecting(3, 50));
        fail(&upstream, "a:1", 2);
        lease_on(&upstream, "a:1").report(Outcome::Success);
        fail(&upstream, "a:1", 2);
        assert!(!ejected(&upstream, "a:1"), "a success broke the streak");

        fail(&upstream, "a:1", 1);
        assert!(ejected(&upstream, "a:1"));
        assert_eq!(picks(&upstream, 4), ["b:2"; 4]);
        pass(999).await;
        assert_eq!(picks(&upstream, 2), ["b:2"; 2]);
        pass(1).await;
        assert!(!ejected(&upstream, "a:1"));
        assert!(picks(&upstream, 2).contains(&"a:1".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeat_ejection_lasts_twice_as_long_and_good_behaviour_is_forgiven() {
        let upstream = upstream_of(&["a:1", "b:2"], ejecting(2, 50));
        fail(&upstream, "a:1", 2);
        pass(1000).await;
        fail(&upstream, "a:1", 2);
        pass(1999).await;
        assert!(ejected(&upstream, "a:1"), "the second ejection lasts 2 s");
        pass(1).await;
        assert!(!ejected(&upstream, "a:1"));

        // In for as long as its last ejection lasted: the next one is short again.
        pass(2000).await;
        fail(&upstream, "a:1", 2);
        assert!(ejected(&upstream, "a:1"));
        pass(1000).await;
        assert!(!ejected(&upstream, "a:1"));
    }

    #[tokio::test(start_paused = true)]
    async fn max_ejected_percent_keeps_one_of_two_failing_instances_in() {
        let upstream = upstream_of(&["a:1", "b:2"], ejecting(2, 50));
        fail(&upstream, "a:1", 2);
        fail(&upstream, "b:2", 5);
        assert!(ejected(&upstream, "a:1"));
        assert!(!ejected(&upstream, "b:2"), "50% of two is one");
        assert_eq!(picks(&upstream, 3), ["b:2"; 3]);
        assert!(upstream.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn ejection_never_takes_the_last_available_instance() {
        let upstream = upstream_of(&["a:1", "b:2"], ejecting(2, 100));
        fail(&upstream, "a:1", 2);
        fail(&upstream, "b:2", 4);
        assert!(ejected(&upstream, "a:1"));
        assert!(!ejected(&upstream, "b:2"));

        let alone = upstream_of(&["a:1"], ejecting(1, 100));
        fail(&alone, "a:1", 3);
        assert!(!ejected(&alone, "a:1"));
        assert!(alone.pick().is_some());
    }

    #[tokio::test]
    async fn an_instance_failing_its_readiness_is_taken_out_and_put_back_when_it_passes() {
        let (a, b) = (TestServer::start().await, TestServer::start().await);
        let upstream = static_upstream(&[&a, &b], fast_policy());
        let _loop = upstream.start();
        eventually("both instances checked", || {
            a.checks() > 0 && b.checks() > 0
        })
        .await;

        a.set_ready(false);
        eventually("a taken out", || !upstream.statuses()[0].healthy).await;
        let failed_checks = a.checks();
        assert!(failed_checks >= 2, "after unhealthy_after checks");
        assert_eq!(picks(&upstream, 4), vec![b.authority(); 4]);

        a.set_ready(true);
        eventually("a put back", || upstream.statuses()[0].healthy).await;
        assert!(
            a.checks() >= failed_checks + 2,
            "after healthy_after checks"
        );
        assert_eq!(picks(&upstream, 2).len(), 2);
        assert!(picks(&upstream, 2).contains(&a.authority()));
    }

    #[tokio::test]
    async fn an_instance_whose_server_stops_is_taken_out_and_none_left_means_not_ready() {
        let (a, b) = (TestServer::start().await, TestServer::start().await);
        let (a_authority, b_authority) = (a.authority(), b.authority());
        let upstream = static_upstream(&[&a, &b], fast_policy());
        let _loop = upstream.start();
        eventually("a checked", || a.checks() > 0).await;

        a.stop().await;
        eventually("a taken out", || !upstream.statuses()[0].healthy).await;
        assert!(upstream.is_ready());
        assert_eq!(picks(&upstream, 3), vec![b_authority; 3]);

        b.stop().await;
        eventually("b taken out", || !upstream.is_ready()).await;
        assert!(upstream.pick().is_none());
        assert_eq!(upstream.statuses()[0].instance.to_string(), a_authority);
    }

    #[tokio::test]
    async fn an_instance_too_slow_to_answer_its_check_fails_it() {
        let a = TestServer::start().await;
        let policy = UpstreamPolicy {
            health_path: "/slow".to_owned(),
            health_timeout_ms: 50,
            ..fast_policy()
        };
        let slow = health_client_probe(&a, &policy).await;
        assert_eq!(slow.unwrap_err(), "no answer within 50 ms");
        let missing = UpstreamPolicy {
            health_path: "/missing".to_owned(),
            ..fast_policy()
        };
        let answer = health_client_probe(&a, &missing).await;
        assert_eq!(answer.unwrap_err(), "answered 404 Not Found");
        let fine = health_client_probe(&a, &fast_policy()).await;
        assert_eq!(fine, Ok(()));
    }

    async fn health_client_probe(server: &TestServer, policy: &UpstreamPolicy) -> Probe {
        let client = client(policy.health_timeout());
        let instance = Instance::parse(&format!("http://{}", server.addr)).unwrap();
        probe(
            &client,
            &instance,
            &policy.health_path,
            policy.health_timeout(),
        )
        .await
    }
}
