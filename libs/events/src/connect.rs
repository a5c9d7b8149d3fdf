//! Connecting to NATS: a client that keeps reconnecting forever (a broker restart must
//! not kill a service) and the JetStream context.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;

/// How a client proves the server and itself: see [`connect`].
#[derive(Clone, Copy, Default)]
pub struct Security<'a> {
    /// The CA (PEM) of the server's certificate; set, TLS is required.
    pub ca_file: Option<&'a Path>,
    /// A user and password the server knows this client by.
    pub credentials: Option<(&'a str, &'a str)>,
}

/// The user, never the password.
impl std::fmt::Debug for Security<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("ca_file", &self.ca_file)
            .field("user", &self.credentials.map(|(user, _)| user))
            .finish()
    }
}

/// Connects (retrying until `deadline`) and returns the client and its JetStream
/// context. Publishes that get no ack within 5 s fail, so the outbox relay notices an
/// outage quickly and backs off.
///
/// TLS: a `tls://` URL requires it, verified against the system's roots; a CA file
/// (PEM) requires it too, verified against that CA (a private one, as a managed or
/// in-house NATS usually has). Without either, a server that asks for TLS still gets
/// it, verified against the system's roots. A user and password, when given, are
/// presented to the server (never logged).
pub async fn connect(
    url: &str,
    name: &str,
    deadline: Duration,
    security: &Security<'_>,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(50);
    let client = loop {
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .event_callback(|event| async move {
                tracing::info!(%event, "nats connection event");
            });
        if let Some(ca) = security.ca_file {
            options = options
                .add_root_certificates(ca.to_path_buf())
                .require_tls(true);
        }
        if let Some((user, password)) = security.credentials {
            options = options.user_and_password(user.to_owned(), password.to_owned());
        }
        match options.connect(url).await {
            Ok(client) => break client,
            Err(e) if started.elapsed() < deadline => {
                tracing::warn!(error = %e, url, "NATS not reachable yet, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(anyhow::anyhow!("NATS at {url} stayed unreachable: {e}")),
        }
    };
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client.clone());
    Ok((client, js))
}
