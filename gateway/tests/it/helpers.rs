//! A gateway on a free port in front of echo upstreams, and tokens it accepts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request};
use axum::routing::any;
use serde_json::{Value, json};
use shop_auth::Role;
use shop_gateway::Settings;
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
    issuer: TestIssuer,
}

/// The shipped route file, with every upstream pointing at `upstream` unless
/// `configure` says otherwise.
pub async fn spawn_gateway(upstream: &str, configure: impl FnOnce(&mut Settings)) -> TestGateway {
    shop_telemetry::init_for_tests();
    let mut settings = Settings::default();
    settings.http.port = 0;
    settings.routes_file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("routes.toml");
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
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestGateway {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        issuer,
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
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    body
}
