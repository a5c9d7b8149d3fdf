//! Test helpers: upstreams over made-up addresses, leases on a chosen instance, small
//! real HTTP instances whose readiness can be switched, a resolver the test scripts,
//! and polling with a deadline.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Instance, Lease, Lookup, Resolve, Source, SystemResolver, Upstream, UpstreamPolicy};

/// A static upstream over `authorities` (`"a:1"`), not started: nothing is contacted.
pub fn upstream_of(authorities: &[&str], policy: UpstreamPolicy) -> Arc<Upstream> {
    let instances = authorities
        .iter()
        .map(|a| Instance::parse(&format!("http://{a}")).unwrap())
        .collect();
    Upstream::new(
        "test",
        Source::Static(instances),
        policy,
        Arc::new(SystemResolver),
    )
}

/// A lease on the instance `authority`, whatever the balancing would have chosen.
pub fn lease_on(upstream: &Arc<Upstream>, authority: &str) -> Lease {
    let others: Vec<Instance> = upstream
        .statuses()
        .into_iter()
        .map(|s| s.instance)
        .filter(|i| i.authority.as_str() != authority)
        .collect();
    let lease = upstream
        .pick_except(&others)
        .expect("an available instance");
    assert_eq!(
        lease.instance().authority.as_str(),
        authority,
        "is it available?"
    );
    lease
}

/// Short intervals, so the real-time tests take a fraction of a second.
pub fn fast_policy() -> UpstreamPolicy {
    UpstreamPolicy {
        balance: super::Balance::RoundRobin,
        health_interval_ms: 50,
        health_timeout_ms: 500,
        dns_refresh_ms: 50,
        ..UpstreamPolicy::default()
    }
}

/// Polls `condition` every 10 ms for up to 5 s; fails the test naming `what`.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The authorities `n` picks went to, in order.
pub fn picks(upstream: &Arc<Upstream>, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            upstream
                .pick()
                .map_or("none".to_owned(), |l| l.instance().to_string())
        })
        .collect()
}

/// A real instance: `/readyz` answers 200 while `ready`, else 503, and counts its calls;
/// `/slow` answers after 2 s; anything else is 404.
pub struct TestServer {
    pub addr: SocketAddr,
    pub ready: Arc<AtomicBool>,
    pub checks: Arc<AtomicUsize>,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<()>,
}

#[derive(Clone)]
struct Probe {
    ready: Arc<AtomicBool>,
    checks: Arc<AtomicUsize>,
}

async fn readyz(State(probe): State<Probe>) -> StatusCode {
    probe.checks.fetch_add(1, Ordering::Relaxed);
    if probe.ready.load(Ordering::Relaxed) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// Two instances on the same port, at 127.0.0.1 and 127.0.0.2 (both loopback on
    /// Linux): what two addresses of one DNS name look like.
    pub async fn pair_on_one_port() -> (Self, Self) {
        for _ in 0..20 {
            let second = TcpListener::bind("127.0.0.2:0").await.unwrap();
            let port = second.local_addr().unwrap().port();
            if let Ok(first) = TcpListener::bind(("127.0.0.1", port)).await {
                return (Self::on(first), Self::on(second));
            }
        }
        panic!("no port free on both 127.0.0.1 and 127.0.0.2");
    }

    fn on(listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let probe = Probe {
            ready: Arc::new(AtomicBool::new(true)),
            checks: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/readyz", get(readyz))
            .route("/slow", get(|| tokio::time::sleep(Duration::from_secs(2))))
            .with_state(probe.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            ready: probe.ready,
            checks: probe.checks,
            stop,
            serving,
        }
    }

    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub fn checks(&self) -> usize {
        self.checks.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Stops listening (and closes its connections) before returning.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.serving.await.unwrap();
    }
}

/// A resolver that answers what the test last set (`None`: the lookup fails) and counts
/// its lookups.
#[derive(Default)]
pub struct ScriptedResolver {
    pub answer: Mutex<Option<Vec<SocketAddr>>>,
    pub lookups: AtomicUsize,
}

impl ScriptedResolver {
    pub fn answer(&self, answer: Option<&[&str]>) {
        let parsed = answer.map(|list| list.iter().map(|a| a.parse().unwrap()).collect());
        *self.answer.lock().unwrap() = parsed;
    }
}

impl Resolve for ScriptedResolver {
    fn lookup<'a>(&'a self, _host: &'a str, _port: u16) -> Lookup<'a> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move {
            answer.ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "scripted failure"))
        })
    }
}

/// A resolver that counts the lookups of another one.
pub struct Counting<R> {
    pub inner: R,
    pub lookups: AtomicUsize,
}

impl<R: Resolve> Resolve for Counting<R> {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.inner.lookup(host, port)
    }
}
