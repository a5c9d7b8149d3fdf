//! The user service's settings: `SHOP_*` environment variables over the defaults below
//! (see `shop_http::config`). Secrets never print.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use shop_http::HttpSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub http: HttpSettings,
    /// This service's own role and schema (`users`); see `shop_db::SERVICES`.
    #[serde(serialize_with = "no_secret")]
    pub database_url: SecretString,
    pub db_max_connections: u32,
    /// NATS with JetStream.
    pub nats_url: String,
    /// Prefix of every stream, subject and consumer name: empty in production, unique
    /// per test so parallel tests never see each other's events.
    pub events_prefix: String,
    pub jwt: JwtSettings,
    pub admin: AdminSettings,
    pub throttle: ThrottleSettings,
    /// How many argon2 hashes may run at once; each takes ~19 MiB and one core.
    /// 0 means one per core.
    pub max_concurrent_hashes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwtSettings {
    /// `iss` of every token; verifiers check it.
    pub issuer: String,
    /// `aud` of every token.
    pub audience: String,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    /// PKCS#8 PEM file of the current Ed25519 signing key.
    pub signing_key_file: Option<PathBuf>,
    /// The same as an inline PEM (e.g. from a Kubernetes secret); the file wins.
    #[serde(serialize_with = "no_secret_opt")]
    pub signing_key_pem: Option<SecretString>,
    /// PEM files (private or public) of keys retired by a rotation: no longer used to
    /// sign, still published in the JWKS until every token they signed has expired.
    pub previous_key_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminSettings {
    /// The admin account created at start-up if absent.
    pub email: String,
    /// Its password. Required outside `SHOP_ENV=local`; never defaulted there.
    #[serde(serialize_with = "no_secret_opt")]
    pub password: Option<SecretString>,
}

/// Repeated failed logins for one e-mail are refused for a while (429).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThrottleSettings {
    pub max_failures: i32,
    pub window_secs: i64,
    pub lockout_secs: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings::on_port(8081),
            database_url: SecretString::from(String::new()),
            db_max_connections: 10,
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            events_prefix: String::new(),
            jwt: JwtSettings {
                issuer: "http://localhost:8081".to_owned(),
                audience: shop_auth::AUDIENCE.to_owned(),
                access_ttl_secs: 15 * 60,
                refresh_ttl_secs: 30 * 24 * 3600,
                signing_key_file: None,
                signing_key_pem: None,
                previous_key_files: Vec::new(),
            },
            admin: AdminSettings {
                email: "admin@shop.local".to_owned(),
                password: None,
            },
            throttle: ThrottleSettings {
                max_failures: 5,
                window_secs: 15 * 60,
                lockout_secs: 15 * 60,
            },
            max_concurrent_hashes: 0,
        }
    }
}

impl Settings {
    /// Defaults, then `SHOP_CONFIG_FILE`, then `SHOP_*` variables. On a developer
    /// machine (`SHOP_ENV=local`) the seeded admin gets the documented dev password.
    pub fn load() -> anyhow::Result<Self> {
        let mut settings = shop_http::config::load(Self::default())?;
        if settings.admin.password.is_none() && shop_http::config::is_local() {
            settings.admin.password = Some(SecretString::from("admin-password-dev"));
        }
        Ok(settings)
    }
}

fn no_secret<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("")
}

fn no_secret_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_some(""),
        None => s.serialize_none(),
    }
}
