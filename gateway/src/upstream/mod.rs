//! Upstreams: the instances of each service the gateway forwards to, where they come
//! from, which of them are fit to take requests, and which one takes the next.
//!
//! An [`Upstream`] gets its instances from a [`Source`]: a static list, or every address
//! of a DNS name, looked up again every `dns_refresh_ms` (a Kubernetes headless Service
//! works unchanged). Between lookups the last answer is used; a failed lookup keeps it
//! (served stale: the health checks still guard it), an empty answer empties it.
//! Instances still present after a lookup keep their state.
//!
//! Its loop ([`Upstream::start`]) resolves and runs the active health checks; the proxy
//! reports how real requests went ([`Lease::report`]), which drives passive ejection (see
//! [`health`]). [`Upstream::pick`] chooses among the available instances by the
//! upstream's [`Balance`] and returns a [`Lease`]: the request is in flight on that
//! instance until the lease is dropped, which is what least-connections and
//! power-of-two count.
//!
//! Metrics: `gateway_upstream_instances{upstream}` (instances known),
//! `gateway_upstream_instance_up{upstream,instance}` (1 available, 0 not or gone) and
//! `gateway_upstream_ejections_total{upstream,instance}`,
//! `gateway_upstream_queued_total{upstream}` (requests that waited for a free slot of
//! an instance's `max_connections`).

mod balance;
mod health;
mod instance;
mod policy;
mod source;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use anyhow::Context as _;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, TryAcquireError, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use self::health::{Clock, HealthClient, Member};
pub use self::instance::Instance;
pub use self::policy::{Balance, UpstreamPolicy};
pub use self::source::{HostsFileResolver, Lookup, Resolve, Source, SystemResolver};

/// How a request on a leased instance went, as far as the instance is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer (any status but 502, 503 and 504).
    Success,
    /// No connection, no answer in time, or 502/503/504.
    Failure,
}

/// One instance as the upstream sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    pub instance: Instance,
    /// Passing its active health checks (or not checked yet).
    pub healthy: bool,
    /// Out for failed requests, until its ejection time is over.
    pub ejected: bool,
    /// Leases held on it.
    pub in_flight: usize,
}

impl InstanceStatus {
    /// May take requests.
    pub fn available(&self) -> bool {
        self.healthy && !self.ejected
    }
}

/// A service's instances and what is known about them. Shared as `Arc<Upstream>`; a
/// config reload builds a new one, and dropping the old one stops its loop.
pub struct Upstream {
    name: String,
    source: Source,
    policy: UpstreamPolicy,
    resolver: Arc<dyn Resolve>,
    clock: Clock,
    members: RwLock<Arc<[Arc<Member>]>>,
    /// The round-robin position (least-connections breaks ties with it too).
    turn: AtomicUsize,
    /// Ejection decisions look at every instance: one at a time, so two failing
    /// instances cannot both pass the `max_ejected_percent` check.
    ejecting: Mutex<()>,
    /// Dropped with the upstream, which ends its loop at once.
    stop: watch::Sender<()>,
    started: AtomicBool,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("instances", &self.statuses())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// An upstream with a checked `policy` (see [`UpstreamPolicy::check`]). A static
    /// source's instances are there at once; a DNS source has none until its first
    /// lookup ([`Upstream::refresh`], or the loop's first turn).
    pub fn new(
        name: impl Into<String>,
        source: Source,
        policy: UpstreamPolicy,
        resolver: Arc<dyn Resolve>,
    ) -> Arc<Self> {
        let upstream = Self {
            name: name.into(),
            policy,
            resolver,
            clock: Clock::new(),
            members: RwLock::new(Arc::from([])),
            turn: AtomicUsize::new(0),
            ejecting: Mutex::new(()),
            stop: watch::Sender::new(()),
            started: AtomicBool::new(false),
            source,
        };
        if let Source::Static(instances) = &upstream.source {
            upstream.replace(instances.clone());
        }
        Arc::new(upstream)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    pub fn policy(&self) -> &UpstreamPolicy {
        &self.policy
    }

    /// Spawns the upstream's loop: DNS lookups (for a DNS source) and active health
    /// checks, the first of each at once. The loop holds the upstream only weakly and
    /// ends when it is dropped. A second call does nothing (its handle ends at once).
    pub fn start(self: &Arc<Self>) -> JoinHandle<()> {
        if self.started.swap(true, Ordering::Relaxed) {
            return tokio::spawn(async {});
        }
        tokio::spawn(run(Arc::downgrade(self), self.stop.subscribe()))
    }

    /// An instance for a request, or `None` when none is available (answer 503).
    pub fn pick(self: &Arc<Self>) -> Option<Lease> {
        self.pick_except(&[])
    }

    /// An instance other than those already `tried` by this request when one is
    /// available (a retry goes elsewhere), else any available one.
    pub fn pick_except(self: &Arc<Self>, tried: &[Instance]) -> Option<Lease> {
        let now = self.clock.now_ms();
        let members = self.members();
        let balance = self.policy.balance;
        let untried = |m: &Member| m.is_available(now) && !tried.contains(&m.instance);
        let chosen = balance::choose(balance, &members, &self.turn, untried).or_else(|| {
            if tried.is_empty() {
                return None;
            }
            balance::choose(balance, &members, &self.turn, |m| m.is_available(now))
        })?;
        chosen.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Lease {
            upstream: Arc::clone(self),
            member: Arc::clone(chosen),
            slot: None,
        })
    }

    /// Every instance known now, in order.
    pub fn statuses(&self) -> Vec<InstanceStatus> {
        let now = self.clock.now_ms();
        self.members()
            .iter()
            .map(|m| InstanceStatus {
                instance: m.instance.clone(),
                healthy: m.is_healthy(),
                ejected: m.is_ejected(now),
                in_flight: m.in_flight(),
            })
            .collect()
    }

    /// At least one instance is available.
    pub fn is_ready(&self) -> bool {
        let now = self.clock.now_ms();
        self.members().iter().any(|m| m.is_available(now))
    }

    /// Looks a DNS source up now and applies the answer (nothing for a static source).
    /// The loop does this every `dns_refresh_ms`; awaiting it once before serving gives
    /// a DNS upstream its instances from the first request on.
    pub async fn refresh(&self) {
        let Source::Dns { host, port } = &self.source else {
            return;
        };
        match self.resolver.lookup(host, *port).await {
            Ok(mut addresses) => {
                addresses.sort_unstable();
                addresses.dedup();
                if addresses.is_empty() {
                    tracing::warn!(
                        upstream = %self.name,
                        host,
                        "the name resolves to no address: no instance"
                    );
                }
                self.replace(addresses.into_iter().map(Instance::from_addr).collect());
            }
            Err(error) => {
                let kept = self.members().len();
                tracing::warn!(
                    upstream = %self.name,
                    host,
                    %error,
                    kept,
                    "DNS lookup failed: keeping the last known instances"
                );
            }
        }
    }

    fn members(&self) -> Arc<[Arc<Member>]> {
        Arc::clone(&self.members.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes `instances` the upstream's, keeping the state of those it already had.
    fn replace(&self, instances: Vec<Instance>) {
        let now = self.clock.now_ms();
        metrics::gauge!("gateway_upstream_instances", "upstream" => self.name.clone())
            .set(instances.len() as f64);
        let mut members = self.members.write().unwrap_or_else(PoisonError::into_inner);
        let same = members.len() == instances.len()
            && members
                .iter()
                .zip(&instances)
                .all(|(m, i)| &m.instance == i);
        if same {
            return;
        }
        let next: Vec<Arc<Member>> = instances
            .into_iter()
            .map(|instance| {
                if let Some(known) = members.iter().find(|m| m.instance == instance) {
                    return Arc::clone(known);
                }
                tracing::info!(upstream = %self.name, %instance, "instance added");
                let member = Arc::new(Member::new(instance, self.policy.max_connections));
                member.register(&self.name);
                member.publish(&self.name, now);
                member
            })
            .collect();
        for gone in members
            .iter()
            .filter(|m| !next.iter().any(|n| Arc::ptr_eq(m, n)))
        {
            tracing::info!(
                upstream = %self.name,
                instance = %gone.instance,
                "instance removed: no longer resolved"
            );
            gone.set_gauge(&self.name, false);
        }
        *members = next.into();
    }

    /// One round of active checks on every instance, at once.
    async fn check_all(&self, client: &HealthClient) {
        let members = self.members();
        let timeout = self.policy.health_timeout();
        let mut probes = JoinSet::new();
        for member in members.iter() {
            let (member, client) = (Arc::clone(member), client.clone());
            let path = self.policy.health_path.clone();
            probes.spawn(async move {
                let result = health::probe(&client, &member.instance, &path, timeout).await;
                (member, result)
            });
        }
        while let Some(done) = probes.join_next().await {
            if let Ok((member, result)) = done {
                member.checked(&self.name, &self.policy, result, self.clock.now_ms());
            }
        }
        let now = self.clock.now_ms();
        for member in members.iter() {
            member.settle(&self.name, &self.policy, now);
        }
    }

    fn report(&self, member: &Arc<Member>, outcome: Outcome) {
        if outcome == Outcome::Success {
            member.succeeded();
            return;
        }
        let _one_at_a_time = self.ejecting.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_ms();
        member.settle(&self.name, &self.policy, now);
        if !member.failed(&self.policy, now) {
            return;
        }
        match health::may_eject(&self.members(), member, &self.policy, now) {
            Ok(()) => member.eject(&self.name, &self.policy, now),
            Err(why) => {
                tracing::debug!(
                    upstream = %self.name,
                    instance = %member.instance,
                    why,
                    "failing instance kept in"
                );
            }
        }
    }
}

/// The upstream's loop: lookups and checks on their intervals, until the upstream is
/// dropped. Between turns it holds the upstream only weakly.
async fn run(weak: Weak<Upstream>, mut stop: watch::Receiver<()>) {
    let Some(upstream) = weak.upgrade() else {
        return;
    };
    let policy = upstream.policy.clone();
    let resolves = matches!(upstream.source, Source::Dns { .. });
    let name = upstream.name.clone();
    drop(upstream);
    let client = health::client(policy.health_timeout());
    let mut checks = tokio::time::interval(policy.health_interval());
    checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut lookups = tokio::time::interval(policy.dns_refresh());
    lookups.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let lookup = tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = lookups.tick(), if resolves => true,
            _ = checks.tick() => false,
        };
        let Some(upstream) = weak.upgrade() else {
            break;
        };
        if lookup {
            upstream.refresh().await;
        } else {
            upstream.check_all(&client).await;
        }
    }
    tracing::debug!(upstream = %name, "upstream dropped: its loop ends");
}

/// A request in flight on one instance, until dropped. Report how it went so failing
/// instances get ejected.
pub struct Lease {
    upstream: Arc<Upstream>,
    member: Arc<Member>,
    /// One of the instance's `max_connections` slots, once [`Lease::slot`] got it.
    slot: Option<OwnedSemaphorePermit>,
}

impl Lease {
    pub fn instance(&self) -> &Instance {
        &self.member.instance
    }

    pub fn upstream(&self) -> &str {
        &self.upstream.name
    }

    /// Waits, at most `within`, for one of the instance's `max_connections` slots,
    /// which the lease then holds until dropped; `false` if none came free in time.
    /// Waiting requests count as in flight, so the balancer sends new ones elsewhere.
    pub async fn slot(&mut self, within: Duration) -> bool {
        if self.slot.is_some() {
            return true;
        }
        let slots = Arc::clone(&self.member.slots);
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return false,
            Err(TryAcquireError::NoPermits) => {
                metrics::counter!("gateway_upstream_queued_total", "upstream" => self.upstream.name.clone())
                    .increment(1);
                match tokio::time::timeout(within, slots.acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) | Err(_) => return false,
                }
            }
        };
        self.slot = Some(permit);
        true
    }

    /// Gives the slot back while the lease stays (in flight, for the balancer): once
    /// the answer's head is in, the body streams at the client's pace, and a client
    /// that reads slowly, or not at all, must not hold a slot other requests wait for.
    pub fn release_slot(&mut self) {
        self.slot = None;
    }

    /// How the request went; a failure streak of `eject_after` ejects the instance.
    pub fn report(&self, outcome: Outcome) {
        self.upstream.report(&self.member, outcome);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.member.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("upstream", &self.upstream.name)
            .field("instance", &self.member.instance)
            .finish()
    }
}

/// Every upstream of the settings (`name` -> its source) with the default policy and the
/// system resolver, not started. For the transition; the gateway file's policies need
/// [`Upstream::new`].
pub fn from_settings(
    upstreams: &BTreeMap<String, String>,
) -> anyhow::Result<HashMap<String, Arc<Upstream>>> {
    upstreams
        .iter()
        .map(|(name, raw)| {
            let source = Source::parse(raw)
                .with_context(|| format!("SHOP_UPSTREAMS__{}", name.to_uppercase()))?;
            let upstream = Upstream::new(
                name.clone(),
                source,
                UpstreamPolicy::default(),
                Arc::new(SystemResolver),
            );
            Ok((name.clone(), upstream))
        })
        .collect()
}
