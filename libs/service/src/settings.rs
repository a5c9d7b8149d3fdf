//! The settings every service shares. A service's own settings embed them with
//! `#[serde(flatten)]`, so the variables stay flat: `SHOP_PORT`, `SHOP_DATABASE_URL`,
//! `SHOP_NATS_URL` ... (see `shop_http::config` for the layering).
//!
//! Secrets are hidden one way everywhere: an `Option<SecretString>` that is never
//! serialized (`#[serde(skip_serializing, default)]`). `Debug` prints it redacted,
//! and since the defaults are serialized into the configuration's first layer, a
//! secret can only ever come from the file or the environment, never from code.

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
pub use shop_auth::AuthSettings;
use shop_http::HttpSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceSettings {
    #[serde(flatten)]
    pub http: HttpSettings,
    /// The service's own role on its own schema (see `shop_topology::SERVICES`).
    #[serde(skip_serializing, default)]
    pub database_url: Option<SecretString>,
    pub db_max_connections: u32,
    /// How long start-up waits for Postgres and NATS before giving up.
    pub connect_timeout_secs: u64,
    /// NATS with JetStream (`tls://host:4222` requires TLS).
    pub nats_url: String,
    /// `SHOP_NATS_CA_FILE`: the CA (PEM) that signed the NATS server's certificate;
    /// set, TLS is required and verified against it.
    #[serde(default)]
    pub nats_ca_file: Option<std::path::PathBuf>,
    /// `SHOP_NATS_USER`, `SHOP_NATS_PASSWORD`: how the NATS server knows this service
    /// (both or neither).
    #[serde(default)]
    pub nats_user: Option<String>,
    #[serde(skip_serializing, default)]
    pub nats_password: Option<SecretString>,
    /// Prefix of every stream, subject and consumer name: empty in production, unique
    /// per test so parallel tests never see each other's events.
    pub events_prefix: String,
    /// Where access tokens are verified against.
    pub auth: AuthSettings,
}

impl ServiceSettings {
    /// The defaults of the named service (its port from `shop_topology`).
    pub fn defaults_for(service: &str) -> Self {
        let port = shop_topology::service(service).map_or(0, |s| s.default_port);
        Self {
            http: HttpSettings::on_port(port),
            database_url: None,
            db_max_connections: 10,
            connect_timeout_secs: 30,
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            nats_ca_file: None,
            nats_user: None,
            nats_password: None,
            events_prefix: String::new(),
            auth: AuthSettings::default(),
        }
    }

    /// What the NATS connection presents and checks: the CA file, and the user and
    /// password. One of those two without the other is refused.
    pub fn nats_security(&self) -> anyhow::Result<shop_events::connect::Security<'_>> {
        let credentials = match (&self.nats_user, &self.nats_password) {
            (Some(user), Some(password)) => Some((user.as_str(), password.expose_secret())),
            (None, None) => None,
            _ => anyhow::bail!(
                "SHOP_NATS_USER and SHOP_NATS_PASSWORD go together: set both or neither"
            ),
        };
        Ok(shop_events::connect::Security {
            ca_file: self.nats_ca_file.as_deref(),
            credentials,
        })
    }

    /// Defaults, then `SHOP_CONFIG_FILE`, then `SHOP_*` variables: for a service whose
    /// settings are only the shared ones.
    pub fn load(service: &str) -> anyhow::Result<Self> {
        shop_http::config::load(Self::defaults_for(service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_serialize_and_ports_come_from_the_topology() {
        let mut settings = ServiceSettings::defaults_for("catalog");
        settings.database_url = Some(SecretString::from("postgres://u:hunter2@db/shop"));
        settings.nats_user = Some("catalog".to_owned());
        settings.nats_password = Some(SecretString::from("nats-hunter3"));
        let json = serde_json::to_string(&settings).unwrap();
        assert!(!json.contains("nats-hunter3"), "{json}");
        assert!(!format!("{settings:?}").contains("nats-hunter3"));
        assert!(!json.contains("hunter2"), "{json}");
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert_eq!(settings.http.port, 8082);
    }

    #[test]
    fn a_nats_user_without_its_password_or_the_reverse_is_refused() {
        let mut settings = ServiceSettings::defaults_for("catalog");
        assert!(settings.nats_security().unwrap().credentials.is_none());
        settings.nats_user = Some("catalog".to_owned());
        let refused = settings.nats_security().unwrap_err().to_string();
        assert!(refused.contains("SHOP_NATS_PASSWORD"), "{refused}");
        settings.nats_password = Some(SecretString::from("pw"));
        assert_eq!(
            settings.nats_security().unwrap().credentials,
            Some(("catalog", "pw"))
        );
        settings.nats_user = None;
        assert!(settings.nats_security().is_err());
    }
}
