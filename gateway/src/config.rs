//! The gateway's settings: `SHOP_*` variables over the defaults below (see
//! `shop_http::config`). Routes and edge policies live in their own file
//! (`gateway_file`, see `crate::file`), which reloads at run time; the upstreams'
//! addresses come from here, so one gateway file serves every environment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use shop_auth::AuthSettings;
use shop_http::HttpSettings;
use shop_http::client_ip::TrustedProxy;

use crate::tls::TlsSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Listener and connection options (`SHOP_HOST`, `SHOP_PORT`, ...).
    #[serde(flatten)]
    pub http: HttpSettings,
    /// `SHOP_GATEWAY_FILE`: routes and edge policies (default `gateway/gateway.toml`).
    pub gateway_file: PathBuf,
    /// `SHOP_UPSTREAMS__<NAME>`: each upstream's instances, base URLs separated by
    /// commas (`http://10.0.0.5:8082,http://10.0.0.6:8082`), or `dns://name:port` for
    /// every address of a name, looked up again and again (a headless Service).
    pub upstreams: BTreeMap<String, String>,
    /// `SHOP_RELOAD_INTERVAL_MS`: how often the gateway file is checked for changes
    /// (0: only on SIGHUP).
    pub reload_interval_ms: u64,
    /// `SHOP_HOSTS_FILE`: resolve `dns://` upstreams from a file in /etc/hosts format,
    /// read at every lookup, instead of the system's resolver (tests and laptops,
    /// where no DNS server can be changed).
    pub hosts_file: Option<PathBuf>,
    /// `SHOP_PUBLIC_METRICS`: answer `/metrics` to any peer; by default only peers on
    /// loopback or private networks (Prometheus), since it names instance addresses.
    pub public_metrics: bool,
    /// `SHOP_CONNECT_TIMEOUT_MS`: the longest wait for a TCP connection to an instance.
    pub connect_timeout_ms: u64,
    /// `SHOP_TLS__CERT_FILE`, `SHOP_TLS__KEY_FILE`: serve HTTPS (HTTP/1.1 and HTTP/2)
    /// with these PEM files; unset: plain HTTP/1.1.
    pub tls: TlsSettings,
    /// Token verification for the routes' policies.
    pub auth: AuthSettings,
    /// `SHOP_MAX_BODY_BYTES`: the largest request body passed upstream; a
    /// larger one is refused with 413 (by its `Content-Length`, or when the streamed
    /// body passes the limit).
    pub max_body_bytes: u64,
    /// `SHOP_CORES`: how many threads serve, each with its own single-threaded
    /// runtime, connections and upstream pool (`crate::cores`); 0: one per CPU.
    pub cores: usize,
    /// `SHOP_TRUSTED_PROXIES`: proxies in front of the gateway (addresses or CIDR
    /// ranges, e.g. `[10.0.0.0/8]` for an Ingress controller's pods) whose
    /// `X-Forwarded-For`, `-Proto` and `-Host` are believed: the client they name is
    /// the one rate-limited, forwarded upstream and checked for `/metrics`. Empty (the
    /// default): the gateway is the edge and those headers are dropped.
    pub trusted_proxies: Vec<TrustedProxy>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings::on_port(8080),
            gateway_file: PathBuf::from("gateway/gateway.toml"),
            upstreams: BTreeMap::new(),
            reload_interval_ms: 2000,
            hosts_file: None,
            public_metrics: false,
            connect_timeout_ms: 1000,
            tls: TlsSettings::default(),
            auth: AuthSettings::default(),
            max_body_bytes: 1024 * 1024,
            cores: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Settings {
    /// Defaults, then `SHOP_CONFIG_FILE`, then `SHOP_*` variables.
    pub fn load() -> anyhow::Result<Self> {
        shop_http::config::load(Self::default())
    }
}
