//! Connecting to NATS: a client that keeps reconnecting forever (a broker restart must
//! not kill a service) and the JetStream context.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;

/// Connects (retrying until `deadline`) and returns the client and its JetStream
/// context. Publishes that get no ack within 5 s fail, so the outbox relay notices an
/// outage quickly and backs off.
///
/// TLS: a `tls://` URL requires it, verified against the system's roots; `ca_file`
/// (PEM) requires it too, verified against that CA (a private one, as a managed or
/// in-house NATS usually has). Without either, a server that asks for TLS still gets
/// it, verified against the system's roots.
pub async fn connect(
    url: &str,
    name: &str,
    deadline: Duration,
    ca_file: Option<&Path>,
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
        if let Some(ca) = ca_file {
            options = options
                .add_root_certificates(ca.to_path_buf())
                .require_tls(true);
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
