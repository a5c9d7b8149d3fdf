//! Optional TLS termination: HTTPS with HTTP/2 and HTTP/1.1 from a certificate and key
//! in PEM files.
//!
//! It serves as `shop_http::serve_with` does (the same accept loop,
//! `shop_http::server::next_connection`; `ConnectInfo`, the header-read deadline,
//! graceful drain), with two additions. A handshake deadline:
//! a client that opens a TCP connection and never completes the handshake is dropped,
//! as one that never sends a request head is. And the protocol comes from ALPN rather
//! than from sniffing the first bytes (hyper-util's auto mode waits for them without a
//! deadline): `h2` is served as HTTP/2, anything else as HTTP/1.1, which is what a TLS
//! client that offers no ALPN speaks (RFC 9113 3.2 has HTTP/2 over TLS negotiated).
//!
//! rustls runs on ring, the provider async-nats already brings in, so the tree holds
//! one crypto stack. Every request served here carries a [`Tls`] extension, so the
//! security headers know to send HSTS and the proxy to say `proto=https`.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use shop_http::server::next_connection;
use shop_http::{Accept, HttpSettings};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;

/// The longest handshake deadline `check` accepts.
pub const MAX_HANDSHAKE_TIMEOUT_MS: u64 = 60_000;

/// The ALPN protocols offered, in the server's order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Whether and how the gateway terminates TLS (`SHOP_TLS__CERT_FILE`, ...): both files
/// or neither; neither serves plain HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, leaf first, in PEM.
    pub cert_file: Option<PathBuf>,
    /// The leaf's private key in PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// A connection that has not completed its TLS handshake this long after it opened
    /// is closed.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl TlsSettings {
    pub fn check(&self) -> anyhow::Result<()> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => bail!("tls.cert_file is set but tls.key_file is not: set both"),
            (None, Some(_)) => bail!("tls.key_file is set but tls.cert_file is not: set both"),
            _ => {}
        }
        if !(100..=MAX_HANDSHAKE_TIMEOUT_MS).contains(&self.handshake_timeout_ms) {
            bail!("tls.handshake_timeout_ms must be 100 to {MAX_HANDSHAKE_TIMEOUT_MS}");
        }
        Ok(())
    }

    pub fn is_enabled(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
}

/// Marks a request that came over TLS; inserted per connection, like `ConnectInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls;

/// The rustls configuration of `settings`, or `None` when TLS is off. Reads both files
/// now, so a missing, unreadable or mismatched file stops the start, named.
pub fn server_config(settings: &TlsSettings) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    settings.check()?;
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Ok(None);
    };
    let certs = read_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).with_context(|| {
        format!(
            "reading the TLS private key from {} (PEM expected)",
            key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "the certificate in {} and the key in {} do not make a usable pair",
                cert_file.display(),
                key_file.display()
            )
        })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Some(Arc::new(config)))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "reading the TLS certificate chain from {} (PEM expected)",
                path.display()
            )
        })?;
    if certs.is_empty() {
        bail!(
            "no certificate in {} (PEM `CERTIFICATE` blocks expected)",
            path.display()
        );
    }
    Ok(certs)
}

/// What every connection needs, shared.
struct Shared {
    acceptor: TlsAcceptor,
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
    router: Router,
    handshake_timeout: Duration,
}

/// Serves HTTPS until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish and closes idle connections (HTTP/2 ones with a GOAWAY). Handlers
/// can extract `ConnectInfo<SocketAddr>` and see the [`Tls`] extension. Of `http`, only
/// `header_read_timeout_ms` is read; it also paces HTTP/2 keep-alive pings, which
/// close a connection whose peer has gone.
pub async fn serve_tls(
    mut listener: impl Accept,
    router: Router,
    config: Arc<ServerConfig>,
    http: &HttpSettings,
    handshake_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening (TLS)");
    let header_read = Duration::from_millis(http.header_read_timeout_ms);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        // As in `shop_http::serve_with`: a bounded request head (hyper's floor is 8 KiB).
        .max_buf_size(http.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(header_read)
        .keep_alive_timeout(header_read)
        .max_header_list_size(u32::try_from(http.max_header_bytes).unwrap_or(u32::MAX));
    let shared = Arc::new(Shared {
        acceptor: TlsAcceptor::from(config),
        http1: builder.clone().http1_only(),
        http2: builder.http2_only(),
        router,
        handshake_timeout,
    });

    // Every connection holds a receiver; the sender sees them all gone once drained.
    let (drain, draining) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    while let Some((stream, remote)) = next_connection(&mut listener, &mut shutdown).await {
        tokio::spawn(serve_connection(
            stream,
            remote,
            shared.clone(),
            draining.clone(),
        ));
    }
    drop(listener);
    tracing::info!("stopped accepting; draining in-flight requests");
    let _ = drain.send(true);
    drop(draining);
    drain.closed().await;
    Ok(())
}

/// One connection: the handshake within its deadline, then HTTP until the client
/// leaves or the server drains.
async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    mut draining: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(shared.handshake_timeout, shared.acceptor.accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            // Scanners and clients that distrust the certificate: not worth more.
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return;
            }
        },
        _ = draining.wait_for(|drain| *drain) => return,
    };
    let builder = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        &shared.http2
    } else {
        &shared.http1
    };
    let service = ServiceBuilder::new()
        .layer(Extension(ConnectInfo(remote)))
        .layer(Extension(Tls))
        .service(shared.router.clone());
    let connection =
        builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut connection = pin!(connection);
    tokio::select! {
        served = connection.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
            return;
        }
        _ = draining.wait_for(|drain| *drain) => {}
    }
    // Finishes the requests in progress, then closes.
    connection.as_mut().graceful_shutdown();
    if let Err(e) = connection.await {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_want_both_files_or_neither_and_a_sane_handshake_deadline() {
        let off = TlsSettings::default();
        off.check().unwrap();
        assert!(!off.is_enabled());
        assert!(server_config(&off).unwrap().is_none());
        assert_eq!(off.handshake_timeout(), Duration::from_secs(10));

        let cert_only = TlsSettings {
            cert_file: Some("cert.pem".into()),
            ..TlsSettings::default()
        };
        assert!(
            cert_only
                .check()
                .unwrap_err()
                .to_string()
                .contains("tls.key_file")
        );
        let key_only = TlsSettings {
            key_file: Some("key.pem".into()),
            ..TlsSettings::default()
        };
        assert!(
            key_only
                .check()
                .unwrap_err()
                .to_string()
                .contains("tls.cert_file")
        );
        let hasty = TlsSettings {
            handshake_timeout_ms: 0,
            ..TlsSettings::default()
        };
        assert!(
            hasty
                .check()
                .unwrap_err()
                .to_string()
                .contains("handshake_timeout_ms")
        );
    }
}
