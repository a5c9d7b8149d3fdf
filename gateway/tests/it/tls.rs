//! TLS termination (`shop_gateway::tls`) on a real listener with a certificate made by
//! the test: HTTP/1.1 and HTTP/2 by ALPN, the handshake and header-read deadlines, the
//! drain on shutdown, and files refused at start.
//!
//! The client is hyper over tokio-rustls directly: reqwest's rustls feature would bring
//! aws-lc into the tree next to the ring provider the gateway uses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request};
use axum::routing::get;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::{Value, json};
use shop_gateway::tls::{Tls, TlsSettings, serve_tls, server_config};
use shop_http::HttpSettings;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A certificate for `localhost` and its key, written as PEM files.
struct Certificate {
    der: CertificateDer<'static>,
    cert_file: PathBuf,
    key_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn certificate() -> Certificate {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, made.cert.pem()).unwrap();
    std::fs::write(&key_file, made.signing_key.serialize_pem()).unwrap();
    Certificate {
        der: made.cert.der().clone(),
        cert_file,
        key_file,
        _dir: dir,
    }
}

struct TlsServer {
    addr: SocketAddr,
    cert: Certificate,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<std::io::Result<()>>,
}

/// `router` served over TLS on a free port, with the given deadlines.
async fn spawn_tls(router: Router, handshake_ms: u64, header_read_ms: u64) -> TlsServer {
    let cert = certificate();
    let settings = TlsSettings {
        cert_file: Some(cert.cert_file.clone()),
        key_file: Some(cert.key_file.clone()),
        handshake_timeout_ms: handshake_ms,
    };
    let config = server_config(&settings).unwrap().expect("TLS is on");
    let mut http = HttpSettings::on_port(0);
    http.header_read_timeout_ms = header_read_ms;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        serve_tls(
            listener,
            router,
            config,
            &http,
            settings.handshake_timeout(),
            async {
                let _ = stopped.await;
            },
        )
        .await
    });
    TlsServer {
        addr,
        cert,
        stop: Some(stop),
        served,
    }
}

/// Answers with what the request looked like from the inside.
fn inspecting_router() -> Router {
    Router::new().route(
        "/hello",
        get(|request: Request| async move {
            axum::Json(json!({
                "version": format!("{:?}", request.version()),
                "tls": request.extensions().get::<Tls>().is_some(),
                "peer": request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip().to_string()),
            }))
        }),
    )
}

/// A TLS connection to `server` that trusts its certificate and offers `alpn`.
async fn connect(server: &TlsServer, alpn: &[u8]) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(server.cert.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the handshake succeeds")
}

async fn body_text(response: http::Response<hyper::body::Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn get_http1(stream: TlsStream<TcpStream>, path: &str) -> (u16, String) {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    (response.status().as_u16(), body_text(response).await)
}

async fn get_http2(stream: TlsStream<TcpStream>, path: &str) -> (u16, String) {
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("https://localhost{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    (response.status().as_u16(), body_text(response).await)
}

/// Reads until the server closes the connection; how long that took.
async fn time_until_closed(mut read: impl tokio::io::AsyncRead + Unpin) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), read.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open"),
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn https_answers_over_http1_and_marks_the_request_as_tls() {
    let server = spawn_tls(inspecting_router(), 10_000, 10_000).await;
    let stream = connect(&server, b"http/1.1").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (status, body) = get_http1(stream, "/hello").await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["version"], "HTTP/1.1");
    assert_eq!(body["tls"], true);
    assert_eq!(body["peer"], "127.0.0.1");
}

#[tokio::test]
async fn https_answers_over_http2_when_the_client_offers_h2() {
    let server = spawn_tls(inspecting_router(), 10_000, 10_000).await;
    let stream = connect(&server, b"h2").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, body) = get_http2(stream, "/hello").await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["version"], "HTTP/2.0");
    assert_eq!(body["tls"], true);
    assert_eq!(body["peer"], "127.0.0.1");
}

#[tokio::test]
async fn a_client_that_never_starts_the_handshake_is_disconnected_at_the_deadline() {
    let server = spawn_tls(inspecting_router(), 300, 10_000).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let open_for = time_until_closed(tcp).await;
    assert!(open_for >= Duration::from_millis(250), "{open_for:?}");
    assert!(open_for < Duration::from_secs(5), "{open_for:?}");
}

#[tokio::test]
async fn a_client_that_handshakes_but_sends_no_request_is_disconnected_at_the_header_deadline() {
    let server = spawn_tls(inspecting_router(), 10_000, 300).await;
    let stream = connect(&server, b"http/1.1").await;
    let open_for = time_until_closed(stream).await;
    assert!(open_for >= Duration::from_millis(250), "{open_for:?}");
    assert!(open_for < Duration::from_secs(5), "{open_for:?}");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_an_in_flight_request_finish() {
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let router = {
        let (started, release) = (started.clone(), release.clone());
        Router::new().route(
            "/slow",
            get(move || async move {
                started.notify_one();
                release.notified().await;
                "done"
            }),
        )
    };
    let mut server = spawn_tls(router, 10_000, 10_000).await;
    let stream = connect(&server, b"h2").await;
    let request = tokio::spawn(get_http2(stream, "/slow"));
    started.notified().await;

    server.stop.take().unwrap().send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(server.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        tokio::task::yield_now().await;
    }
    assert!(!server.served.is_finished(), "a request is still in flight");

    release.notify_one();
    let (status, body) = request.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "done"));
    tokio::time::timeout(Duration::from_secs(10), server.served)
        .await
        .expect("the server drained")
        .unwrap()
        .unwrap();
}

#[test]
fn a_missing_certificate_or_key_file_is_refused_at_start_naming_the_file() {
    let cert = certificate();
    let missing = cert.cert_file.with_file_name("nowhere.pem");
    for settings in [
        TlsSettings {
            cert_file: Some(missing.clone()),
            key_file: Some(cert.key_file.clone()),
            ..TlsSettings::default()
        },
        TlsSettings {
            cert_file: Some(cert.cert_file.clone()),
            key_file: Some(missing.clone()),
            ..TlsSettings::default()
        },
    ] {
        let error = format!("{:#}", server_config(&settings).unwrap_err());
        assert!(error.contains(&missing.display().to_string()), "{error}");
    }

    // A key where the certificate should be: no certificate in it.
    let swapped = TlsSettings {
        cert_file: Some(cert.key_file.clone()),
        key_file: Some(cert.key_file.clone()),
        ..TlsSettings::default()
    };
    let error = format!("{:#}", server_config(&swapped).unwrap_err());
    assert!(
        error.contains(&cert.key_file.display().to_string()),
        "{error}"
    );
}

#[test]
fn a_key_that_does_not_fit_the_certificate_is_refused_naming_both_files() {
    let one = certificate();
    let other = certificate();
    let settings = TlsSettings {
        cert_file: Some(one.cert_file.clone()),
        key_file: Some(other.key_file.clone()),
        ..TlsSettings::default()
    };
    let error = format!("{:#}", server_config(&settings).unwrap_err());
    assert!(
        error.contains(&one.cert_file.display().to_string()),
        "{error}"
    );
    assert!(
        error.contains(&other.key_file.display().to_string()),
        "{error}"
    );
}
