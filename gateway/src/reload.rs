//! Configuration reload without a restart: on SIGHUP, and whenever the gateway file's
//! content changes (checked every `reload_interval_ms`; content, not modification
//! time, because a Kubernetes ConfigMap is swapped in through a symlink and a quick
//! edit can keep the same mtime).
//!
//! A reload either puts the whole new file in force or, refused, changes nothing: the
//! running configuration stays, the reason is logged at error level and counted in
//! `gateway_config_reloads_total{outcome="refused"}`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::edge::ratelimit::HOUSEKEEPING_EVERY;
use crate::state::Gateway;

/// Reloads on SIGHUP and on file changes until the gateway is dropped. Also the
/// gateway's housekeeping (rate-limit state of clients gone quiet).
pub async fn watch(gateway: Weak<Gateway>, interval: Option<Duration>) {
    let mut hangup = hangups();
    let mut poll = tokio::time::interval(interval.unwrap_or(Duration::from_secs(3600)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_EVERY);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let signalled = tokio::select! {
            _ = poll.tick() => false,
            Some(()) = hangup.recv() => true,
            _ = housekeeping.tick() => {
                let Some(gateway) = gateway.upgrade() else { return };
                gateway.snapshot().rate_limits.housekeeping();
                continue;
            }
        };
        if !signalled && interval.is_none() {
            continue;
        }
        let Some(gateway) = gateway.upgrade() else {
            return;
        };
        reload_now(&gateway, if signalled { "signal" } else { "file" });
    }
}

/// One reload, logged and counted.
pub fn reload_now(gateway: &Arc<Gateway>, trigger: &'static str) {
    let outcome = match gateway.reload() {
        Ok(true) => {
            tracing::info!(trigger, file = %gateway.settings.gateway_file.display(), "gateway file reloaded");
            "applied"
        }
        Ok(false) => {
            if trigger == "signal" {
                tracing::info!(trigger, "gateway file unchanged");
            }
            return;
        }
        Err(e) => {
            tracing::error!(
                trigger,
                error = format!("{e:#}"),
                "gateway file refused; the running configuration stays"
            );
            "refused"
        }
    };
    metrics::counter!("gateway_config_reloads_total", "outcome" => outcome).increment(1);
}

/// SIGHUP, as a channel (never fires where there are no signals).
fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hangup) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    if tx.send(()).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}
