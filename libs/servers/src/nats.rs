//! A real `nats-server` with JetStream, on 127.0.0.1 only.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::process::{LogSink, Process, ProcessOptions, StopSignal};

/// How to run a [`NatsServer`].
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// JetStream's storage folder (`-sd`).
    pub store_dir: PathBuf,
    pub port: u16,
    /// The HTTP monitoring port (`-m`), if wanted.
    pub monitor_port: Option<u16>,
    /// Where the server writes its pid (`-P`), so a later run can stop an orphan.
    pub pid_file: Option<PathBuf>,
    pub log: LogSink,
    /// Deleted after the server stops (test servers: their temporary folder).
    pub remove_after_stop: Option<PathBuf>,
    /// How long to wait for a connection and an answer from JetStream.
    pub start_timeout: Duration,
    /// JetStream's `max_file_store`: the ceiling on what streams may *reserve*, not
    /// disk used. Every stream reserves its `max_bytes` when created (the shop's are
    /// 1 GiB each), and nats-server's default ceiling is 75% of the free disk, so many
    /// test namespaces, or a laptop with little free space, would be refused streams
    /// ("insufficient storage resources") long before anything is written.
    pub max_file_store: u64,
    /// Serve TLS only (`--tls`), with this certificate and key.
    pub tls: Option<NatsTls>,
    /// Accept only this user and password (`--user`, `--pass`).
    pub credentials: Option<(String, String)>,
}

/// A server certificate and its key, PEM files. The certificate is also the root its
/// own readiness check trusts (a self-signed one, in tests).
#[derive(Debug, Clone)]
pub struct NatsTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl NatsOptions {
    /// A server logging to `<store_dir>.log`, no monitoring, no pid file.
    pub fn new(store_dir: impl Into<PathBuf>, port: u16) -> Self {
        let store_dir = store_dir.into();
        Self {
            log: LogSink::File(store_dir.with_extension("log")),
            store_dir,
            port,
            monitor_port: None,
            pid_file: None,
            remove_after_stop: None,
            start_timeout: Duration::from_secs(30),
            max_file_store: 1 << 40,
            tls: None,
            credentials: None,
        }
    }
}

/// A running `nats-server -js`.
#[derive(Debug)]
pub struct NatsServer {
    process: Process,
    port: u16,
    monitor_port: Option<u16>,
    /// The root to trust when it serves TLS.
    root: Option<PathBuf>,
    /// What its readiness check presents.
    credentials: Option<(String, String)>,
}

impl NatsServer {
    /// Starts the server and returns once a client can connect and JetStream answers.
    pub async fn start(options: NatsOptions) -> anyhow::Result<NatsServer> {
        let bin = crate::binaries::nats_server_bin()?;
        let store_dir = std::path::absolute(&options.store_dir)?;
        std::fs::create_dir_all(&store_dir)
            .with_context(|| format!("creating {}", store_dir.display()))?;

        // The only JetStream setting with no command-line flag goes in a config file.
        let config = store_dir.with_extension("conf");
        std::fs::write(
            &config,
            format!(
                "jetstream {{\n  max_file_store: {}\n}}\n",
                options.max_file_store
            ),
        )
        .with_context(|| format!("writing {}", config.display()))?;

        let mut command = Command::new(bin);
        command
            .arg("-c")
            .arg(&config)
            .arg("-js")
            .args(["-a", "127.0.0.1", "-p"])
            .arg(options.port.to_string())
            .arg("-sd")
            .arg(&store_dir)
            .current_dir("/");
        if let Some(monitor) = options.monitor_port {
            command.arg("-m").arg(monitor.to_string());
        }
        if let Some(pid_file) = &options.pid_file {
            command.arg("-P").arg(std::path::absolute(pid_file)?);
        }
        if let Some((user, password)) = &options.credentials {
            command.arg("--user").arg(user).arg("--pass").arg(password);
        }
        if let Some(tls) = &options.tls {
            command
                .arg("--tls")
                .arg("--tlscert")
                .arg(std::path::absolute(&tls.cert_file)?)
                .arg("--tlskey")
                .arg(std::path::absolute(&tls.key_file)?);
        }
        let process = Process::spawn(
            command,
            ProcessOptions {
                name: "nats".into(),
                log: options.log,
                stop_signal: StopSignal::Terminate,
                run_as: None,
                remove_after: options.remove_after_stop,
            },
        )?;
        let server = NatsServer {
            process,
            port: options.port,
            monitor_port: options.monitor_port,
            root: options.tls.map(|tls| tls.cert_file),
            credentials: options.credentials,
        };
        if let Err(e) = server.wait_ready(options.start_timeout).await {
            server.stop().await;
            return Err(e);
        }
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:<port>`, or `tls://` when it serves TLS.
    pub fn url(&self) -> String {
        let scheme = if self.root.is_some() { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<monitor port>`, when monitoring is on.
    pub fn monitor_url(&self) -> Option<String> {
        self.monitor_port
            .map(|port| format!("http://127.0.0.1:{port}"))
    }

    pub fn process(&self) -> &Process {
        &self.process
    }

    /// SIGTERM, then waits.
    pub async fn stop(&self) -> ExitStatus {
        self.process.stop(Duration::from_secs(15)).await
    }

    async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let url = self.url();
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(status) = self.process.status() {
                anyhow::bail!(
                    "nats-server exited ({status}) while starting on 127.0.0.1:{}. Last lines \
                     of its log ({}):\n{}",
                    self.port,
                    self.process.log_location(),
                    self.process.log_tail(30)
                );
            }
            let last_error = match jetstream_answers(
                &url,
                self.root.as_deref(),
                self.credentials.as_ref(),
            )
            .await
            {
                Ok(()) => return Ok(()),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "nats-server on 127.0.0.1:{} was not ready with JetStream within \
                     {timeout:?} (last error: {last_error}). Last lines of its log ({}):\n{}",
                    self.port,
                    self.process.log_location(),
                    self.process.log_tail(30)
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

/// Asks JetStream for the account info with a plain request (not
/// `jetstream::Context::query_account`, whose reply type wants fields that the
/// nats-server 2.9 of Debian 12 does not send).
async fn jetstream_answers(
    url: &str,
    root: Option<&Path>,
    credentials: Option<&(String, String)>,
) -> anyhow::Result<()> {
    let mut options = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(1))
        .request_timeout(Some(Duration::from_secs(2)));
    if let Some(root) = root {
        options = options.add_root_certificates(root.to_path_buf());
    }
    if let Some((user, password)) = credentials {
        options = options.user_and_password(user.clone(), password.clone());
    }
    let client = options.connect(url).await.context("connecting")?;
    let reply = client
        .request("$JS.API.INFO", "".into())
        .await
        .context("asking JetStream for the account")?;
    let info: serde_json::Value =
        serde_json::from_slice(&reply.payload).context("reading JetStream's answer")?;
    if let Some(error) = info.get("error") {
        anyhow::bail!("JetStream answered with an error: {error}");
    }
    Ok(())
}

/// Stops a nats-server left running by a launcher that was killed hard (read from
/// the pid file it was started with). Returns the pid it stopped, if any.
pub async fn stop_orphan(pid_file: &Path) -> anyhow::Result<Option<u32>> {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return Ok(None);
    };
    let Ok(pid) = text.trim().parse() else {
        return Ok(None);
    };
    let stopped = crate::process::stop_pid(
        pid,
        "nats-server",
        StopSignal::Terminate,
        Duration::from_secs(30),
    )
    .await?;
    let _ = std::fs::remove_file(pid_file);
    Ok(stopped.then_some(pid))
}
