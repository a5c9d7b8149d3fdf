//! A gateway on a free port in front of echo upstreams, and tokens it accepts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request};
use axum::routing::any;
use http::StatusCode;
use serde_json::{Value, json};
use shop_auth::Role;
use shop_gateway::{Gateway, Settings};
use shop_testkit::TestIssuer;
use tokio::net::TcpListener;

/// An upstream that answers every request with what it received, as JSON: method,
/// path (with query), headers, body, and the instance's name. `/slow` waits 5 s.
pub async fn echo_upstream(instance: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(any(move |request: Request| async move {
        let (parts, body) = request.into_parts();
        if parts.uri.path().ends_with("/slow") {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let headers: BTreeMap<String, String> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string());
        (
            [
                ("connection", "keep-alive, x-secret-hop"),
                ("x-secret-hop", "1"),
                ("x-upstream", instance),
            ],
            axum::Json(json!({
                "instance": instance,
                "method": parts.method.as_str(),
                "uri": parts.uri.to_string(),
                "headers": headers,
                "body_len": body.len(),
                "peer": peer,
            })),
        )
    }));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// A port nothing listens on.
pub fn dead_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

pub struct TestGateway {
    pub address: String,
    pub client: reqwest::Client,
    /// The running gateway: its snapshot, upstreams, `reload()`.
    pub handle: Arc<Gateway>,
    issuer: TestIssuer,
}

/// The shipped route file, with every upstream pointing at `upstream` unless
/// `configure` says otherwise.
pub async fn spawn_gateway(upstream: &str, configure: impl FnOnce(&mut Settings)) -> TestGateway {
    shop_telemetry::init_for_tests();
    let mut settings = Settings::default();
    settings.http.port = 0;
    settings.gateway_file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("gateway.toml");
    settings.max_body_bytes = 1024;
    for name in [
        "user",
        "catalog",
        "inventory",
        "order",
        "payment",
        "shipping",
    ] {
        settings
            .upstreams
            .insert(name.to_owned(), upstream.to_owned());
    }
    configure(&mut settings);
    let issuer = TestIssuer::new();
    let app = shop_gateway::build(settings, issuer.verifier())
        .await
        .expect("the gateway builds");
    let port = app.port();
    let handle = app.gateway();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestGateway {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        handle,
        issuer,
    }
}

/// A gateway file of the test's own, in a folder of its own (so the test can rewrite
/// it), with `upstreams` as the environment would give them.
pub struct GatewayFile {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl GatewayFile {
    pub fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, toml).unwrap();
        Self { path, _dir: dir }
    }

    pub fn write(&self, toml: &str) {
        // Written aside and renamed, as an editor or a ConfigMap update does: the
        // gateway never reads half a file.
        let next = self.path.with_extension("next");
        std::fs::write(&next, toml).unwrap();
        std::fs::rename(&next, &self.path).unwrap();
    }
}

/// A gateway over `file`, with exactly `upstreams` (name, addresses) in its settings.
pub async fn spawn_gateway_on(
    file: &GatewayFile,
    upstreams: &[(&str, String)],
    configure: impl FnOnce(&mut Settings),
) -> TestGateway {
    let path = file.path.clone();
    let upstreams: Vec<(String, String)> = upstreams
        .iter()
        .map(|(n, a)| ((*n).to_owned(), a.clone()))
        .collect();
    spawn_gateway("http://unused", move |settings| {
        settings.gateway_file = path;
        settings.upstreams = upstreams.into_iter().collect();
        configure(settings);
    })
    .await
}

/// One route to `upstream` (`/api/v1/things`), public, with `extra` lines appended to
/// the route, then `rest` (further sections).
pub fn one_route(upstream: &str, extra: &str, rest: &str) -> String {
    format!(
        "[[routes]]\nname = \"things\"\nprefix = \"/api/v1/things\"\nupstream = \"{upstream}\"\npolicy = \"public\"\ntimeout_ms = 2000\n{extra}\n{rest}"
    )
}

/// Polls `condition` every 20 ms until it holds, or fails the test after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How an upstream of the test's own answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 with its name.
    Healthy,
    /// 503 to everything, `/readyz` included (an overloaded or broken instance).
    Failing,
}

/// An upstream the test controls: it counts what it served, can be switched to
/// failing, stopped (every connection dropped, like a killed process) and started
/// again on the same port.
pub struct TestUpstream {
    pub name: &'static str,
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    mode: Arc<std::sync::Mutex<Mode>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestUpstream {
    pub async fn start(name: &'static str) -> Self {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap()).await
    }

    /// On a given address (127.0.0.2 with another upstream's port: two "hosts" of one
    /// DNS name).
    pub async fn start_on(name: &'static str, addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let mut upstream = Self {
            name,
            addr: listener.local_addr().unwrap(),
            hits: Arc::default(),
            mode: Arc::new(std::sync::Mutex::new(Mode::Healthy)),
            task: None,
        };
        upstream.serve(listener);
        upstream
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served other than health checks.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Kills it: the listener and every open connection go at once.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Back on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let listener = loop {
            // The old socket may take a moment to be released.
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let name = self.name;
        let hits = self.hits.clone();
        let mode = self.mode.clone();
        let app = Router::new().fallback(any(move |request: Request| {
            let hits = hits.clone();
            let mode = *mode.lock().unwrap();
            async move {
                let path = request.uri().path().to_owned();
                if path != "/readyz" {
                    hits.fetch_add(1, Ordering::SeqCst);
                }
                match mode {
                    Mode::Healthy => (StatusCode::OK, [("x-upstream", name)], name),
                    Mode::Failing => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("x-upstream", name)],
                        name,
                    ),
                }
            }
        }));
        // Connections are tasks of this one task's JoinSet: aborting it drops them all,
        // as a killed process would.
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn token(&self, roles: &[Role], expires_in: i64) -> String {
        self.issuer.token(roles, expires_in)
    }

    pub fn customer(&self) -> String {
        self.issuer.customer()
    }

    pub fn admin(&self) -> String {
        self.issuer.admin()
    }
}

/// Asserts a problem+json answer of `status` and returns it.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    shop_testkit::problem(response, StatusCode::from_u16(status).unwrap()).await
}
