//! Thread per core: the gateway serves on one thread per CPU (`SHOP_CORES`), each
//! running its own single-threaded tokio runtime with its own client connections and
//! its own pool of upstream connections, as nginx runs one worker process per CPU.
//!
//! Why: a proxied request is four socket operations and almost no computation, so
//! what a multi-threaded runtime adds around them shows. Its workers wake each other
//! (a task woken by one worker's I/O is run by another; an idle worker is unparked for
//! every burst), and a pooled upstream connection whose task lives on one worker
//! hands every answer across to whichever worker serves the client. Measured on the
//! benchmark (`bench/README.md`), that cross-thread traffic cost more CPU than the
//! proxying itself. Here a connection, the requests on it, the upstream connections
//! they use and the tasks those need all stay on one thread: nothing crosses between
//! cores on the request path but the shared state's atomics (the configuration in
//! force, rate-limit budgets, instance health, breakers, metrics).
//!
//! One acceptor (on the first core, beside its serving) takes every connection from
//! the one listener and hands it to the cores in turn. Handing over costs a channel
//! send per connection, not per request (clients keep their connections), and the
//! cores share the load evenly whatever the kernel would have hashed; a second
//! process cannot join the port unnoticed, as it could with `SO_REUSEPORT`.
//! The first core is the caller's runtime, which also runs the background work
//! (discovery, health checks, reloads).
//!
//! Shutdown: the acceptor stops taking connections, then every core drains its own
//! (in-flight requests finish, idle connections close), and the threads are joined.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::{Extension, Router};
use rustls::ServerConfig;
use shop_http::Accept;
use shop_http::server::next_connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::state::{Gateway, UpstreamClient};

/// The most serving threads `SHOP_CORES` may ask for.
pub const MAX_CORES: usize = 1024;

/// Refuses a `SHOP_CORES` that would start more threads than any machine has cores.
pub fn check(setting: usize) -> anyhow::Result<()> {
    if setting > MAX_CORES {
        anyhow::bail!("SHOP_CORES = {setting}: at most {MAX_CORES} (0: one per CPU)");
    }
    Ok(())
}

/// How many cores serve: `setting`, or one per CPU the process may run on when 0
/// (`available_parallelism` counts a container's cgroup CPU limit).
pub fn count(setting: usize) -> usize {
    match setting {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// The upstream client of the core serving a request, put in every request's
/// extensions. A request without one (an app driven directly, in tests) uses the
/// gateway's shared client.
#[derive(Clone)]
pub struct CoreClient(pub Arc<UpstreamClient>);

impl CoreClient {
    /// The client of the core serving the request with these extensions, else the
    /// gateway's shared one.
    pub fn of<'a>(extensions: &'a http::Extensions, gateway: &'a Gateway) -> &'a UpstreamClient {
        extensions
            .get::<CoreClient>()
            .map_or(&gateway.client, |core| &core.0)
    }
}

/// What one core needs to serve: the app, and TLS when it terminates TLS.
#[derive(Clone)]
pub(crate) struct Core {
    pub router: Router,
    pub tls: Option<Arc<ServerConfig>>,
    pub gateway: Arc<Gateway>,
}

impl Core {
    /// Serves the connections `incoming` yields until `stop`, then drains them. The
    /// upstream client is made here, so its connections and their tasks belong to the
    /// runtime this runs on.
    async fn serve(
        self,
        incoming: impl Accept,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let client = CoreClient(Arc::new(self.gateway.upstream_client()));
        let router = self.router.layer(Extension(client));
        let settings = &self.gateway.settings;
        match self.tls {
            Some(config) => {
                crate::tls::serve_tls(
                    incoming,
                    router,
                    config,
                    &settings.http,
                    settings.tls.handshake_timeout(),
                    stop,
                )
                .await
            }
            None => shop_http::serve_with(incoming, router, &settings.http, stop).await,
        }
    }
}

/// The connections the acceptor handed to one core.
struct Handoff {
    connections: mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    addr: SocketAddr,
}

impl Accept for Handoff {
    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        match self.connections.recv().await {
            // Registered with this core's runtime from here on.
            Some((stream, peer)) => Ok((TcpStream::from_std(stream)?, peer)),
            // The acceptor is gone, which it is only once the stop has been given.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Serves `listener` on `cores` cores (the caller's runtime and `cores - 1` threads)
/// until `shutdown`, then drains every core and joins its thread.
pub(crate) async fn run(
    listener: TcpListener,
    cores: usize,
    core: Core,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if cores <= 1 {
        return Ok(core.serve(listener, shutdown).await?);
    }
    let addr = listener.local_addr()?;
    let (stop, stopping) = watch::channel(false);
    let stopped = move || {
        let mut stopping = stopping.clone();
        async move {
            // A dropped sender is a stop too.
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    };

    let mut handoffs = Vec::with_capacity(cores);
    let (first, own) = mpsc::unbounded_channel();
    handoffs.push(first);
    let mut threads = Vec::with_capacity(cores - 1);
    for index in 1..cores {
        let (handoff, connections) = mpsc::unbounded_channel();
        handoffs.push(handoff);
        let core = core.clone();
        let stop = stopped();
        let thread = std::thread::Builder::new()
            .name(format!("gateway-core-{index}"))
            .spawn(move || -> io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(core.serve(Handoff { connections, addr }, stop))
            })?;
        threads.push(thread);
    }

    let serving = core.serve(
        Handoff {
            connections: own,
            addr,
        },
        stopped(),
    );
    let accepting = async move {
        let accepted = accept(listener, handoffs, shutdown).await;
        let _ = stop.send(true);
        accepted
    };
    let (accepted, served) = tokio::join!(accepting, serving);

    let mut outcome = accepted.and(served.map_err(anyhow::Error::from));
    for thread in threads {
        let joined = tokio::task::spawn_blocking(move || thread.join()).await?;
        let result = match joined {
            Ok(served) => served.map_err(anyhow::Error::from),
            Err(_) => Err(anyhow::anyhow!("a serving core panicked")),
        };
        outcome = outcome.and(result);
    }
    outcome
}

/// Takes connections until `shutdown` and hands them to the cores in turn. A core
/// that has stopped taking them (its thread ended) is left out from then on; with
/// none left, the gateway cannot serve and says so.
async fn accept(
    mut listener: TcpListener,
    mut cores: Vec<mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next = 0;
    while let Some((stream, peer)) = next_connection(&mut listener, &mut shutdown).await {
        // Deregistered from this runtime; the core it goes to registers it with its own.
        let mut connection = match stream.into_std() {
            Ok(stream) => (stream, peer),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection lost before it was handed over");
                continue;
            }
        };
        loop {
            if cores.is_empty() {
                anyhow::bail!("every serving core has stopped");
            }
            next %= cores.len();
            match cores[next].send(connection) {
                Ok(()) => {
                    next += 1;
                    break;
                }
                Err(mpsc::error::SendError(back)) => {
                    tracing::error!(core = next, "a serving core has stopped; leaving it out");
                    cores.remove(next);
                    connection = back;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_cores_means_one_per_cpu_and_an_absurd_count_is_refused() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(count(0), cpus);
        assert_eq!(count(3), 3);
        assert!(check(0).is_ok());
        assert!(check(MAX_CORES).is_ok());
        let refused = check(MAX_CORES + 1).unwrap_err().to_string();
        assert!(refused.contains("SHOP_CORES"), "{refused}");
    }
}
