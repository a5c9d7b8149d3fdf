//! The gateway's settings: `SHOP_*` variables over the defaults below (see
//! `shop_http::config`). The routes live in their own file (`routes_file`, see
//! `crate::routes`); the upstreams' addresses come from here, so one route file serves
//! every environment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use shop_auth::AuthSettings;
use shop_http::HttpSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Listener and connection options (`SHOP_HOST`, `SHOP_PORT`, ...).
    #[serde(flatten)]
    pub http: HttpSettings,
    /// `SHOP_ROUTES_FILE`: the route table (default `gateway/routes.toml`).
    pub routes_file: PathBuf,
    /// `SHOP_UPSTREAMS__<NAME>`: each upstream's instances, base URLs separated by
    /// commas (`http://10.0.0.5:8082,http://10.0.0.6:8082`).
    pub upstreams: BTreeMap<String, String>,
    /// Token verification for the routes' policies.
    pub auth: AuthSettings,
    /// `SHOP_MAX_BODY_BYTES`: the largest request body passed upstream; a
    /// larger one is refused with 413 (by its `Content-Length`, or when the streamed
    /// body passes the limit).
    pub max_body_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings::on_port(8080),
            routes_file: PathBuf::from("gateway/routes.toml"),
            upstreams: BTreeMap::new(),
            auth: AuthSettings::default(),
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl Settings {
    /// Defaults, then `SHOP_CONFIG_FILE`, then `SHOP_*` variables.
    pub fn load() -> anyhow::Result<Self> {
        shop_http::config::load(Self::default())
    }
}
