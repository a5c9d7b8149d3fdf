//! Signing keys and tokens for tests, and a local JWKS endpoint that can be stopped,
//! restarted, made to fail or made to hang.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ISSUER: &str = "http://issuer.test";

/// An Ed25519 signing key with its key id.
pub struct TestKey {
    key: EncodingKey,
    pub kid: String,
    jwk: Jwk,
}

impl TestKey {
    pub fn generate() -> Self {
        // RFC 8410's PKCS#8 v1 prefix, then the 32 bytes that are the whole private key.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        der.extend_from_slice(&seed);
        let key = EncodingKey::from_ed_der(&der);
        let kid = format!("key-{}", uuid::Uuid::new_v4());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
        jwk.common.key_id = Some(kid.clone());
        Self { key, kid, jwk }
    }

    /// A customer's token, valid for ten minutes.
    pub fn token(&self) -> String {
        self.token_with(&self.kid, 600)
    }

    /// A token claiming key id `kid` and expiring `expires_in` seconds from now.
    pub fn token_with(&self, kid: &str, expires_in: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = json!({
            "iss": ISSUER,
            "aud": shop_auth::AUDIENCE,
            "sub": uuid::Uuid::new_v4(),
            "roles": ["customer"],
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid::Uuid::new_v4(),
        });
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

pub fn jwks(keys: &[&TestKey]) -> JwkSet {
    JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Serve,
    Fail,
    Hang,
}

struct Published {
    jwks: Mutex<JwkSet>,
    behaviour: Mutex<Behaviour>,
    hits: AtomicUsize,
    hanging: AtomicUsize,
}

/// The issuer's `/.well-known/jwks.json`, on a port of its own.
pub struct Issuer {
    addr: SocketAddr,
    published: Arc<Published>,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Issuer {
    pub async fn start(jwks: JwkSet) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let published = Arc::new(Published {
            jwks: Mutex::new(jwks),
            behaviour: Mutex::new(Behaviour::Serve),
            hits: AtomicUsize::new(0),
            hanging: AtomicUsize::new(0),
        });
        let mut issuer = Self {
            addr: listener.local_addr().unwrap(),
            published,
            running: None,
        };
        issuer.serve(listener);
        issuer
    }

    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    /// How many times the key set was asked for.
    pub fn hits(&self) -> usize {
        self.published.hits.load(Ordering::SeqCst)
    }

    /// How many requests are being left unanswered.
    pub fn hanging(&self) -> usize {
        self.published.hanging.load(Ordering::SeqCst)
    }

    /// Answers 503 from now on.
    pub fn fail(&self) {
        *self.published.behaviour.lock().unwrap() = Behaviour::Fail;
    }

    /// Accepts requests and never answers them.
    pub fn hang(&self) {
        *self.published.behaviour.lock().unwrap() = Behaviour::Hang;
    }

    /// Closes the port: fetches are refused.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            task.await.unwrap();
        }
    }

    /// Serves `jwks` on the same port again.
    pub async fn restart(&mut self, jwks: JwkSet) {
        *self.published.jwks.lock().unwrap() = jwks;
        *self.published.behaviour.lock().unwrap() = Behaviour::Serve;
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = axum::Router::new()
            .route("/.well-known/jwks.json", get(publish))
            .with_state(self.published.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        self.running = Some((stop, task));
    }
}

async fn publish(State(published): State<Arc<Published>>) -> Response {
    published.hits.fetch_add(1, Ordering::SeqCst);
    let behaviour = *published.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Serve => Json(published.jwks.lock().unwrap().clone()).into_response(),
        Behaviour::Fail => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Behaviour::Hang => {
            published.hanging.fetch_add(1, Ordering::SeqCst);
            std::future::pending().await
        }
    }
}

/// Polls `check` until it returns `Some`, failing the test after `deadline`.
pub async fn eventually<T, F>(deadline: Duration, what: &str, mut check: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
