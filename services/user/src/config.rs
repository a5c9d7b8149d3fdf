//! The user service's settings: `SHOP_*` environment variables over the defaults below
//! (see `shop_http::config`). Secrets never print and are never serialized
//! (`shop_service::settings` says why).

use std::path::PathBuf;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use shop_service::ServiceSettings;

use crate::client_ip::TrustedProxy;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// What every service has: listener, database, NATS (see `shop_service::settings`).
    #[serde(flatten)]
    pub service: ServiceSettings,
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
    /// How long an unused refresh token stays valid; every refresh issues a new one.
    pub refresh_ttl_secs: i64,
    /// The absolute lifetime of a login (a refresh-token family): after it the client
    /// logs in again, however recently it refreshed. No token outlives its family.
    pub refresh_family_ttl_secs: i64,
    /// PKCS#8 PEM file of the current Ed25519 signing key.
    pub signing_key_file: Option<PathBuf>,
    /// The same as an inline PEM (e.g. from a Kubernetes secret); the file wins.
    #[serde(skip_serializing, default)]
    pub signing_key_pem: Option<SecretString>,
    /// PEM files (private or public) of keys retired by a rotation: no longer used to
    /// sign, still published in the JWKS until every token they signed has expired.
    pub previous_key_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminSettings {
    /// The admin account created at start-up if absent. If an account that is not an
    /// admin holds this e-mail, the service refuses to start (see `crate::admin`).
    pub email: String,
    /// Its password, used only to create it. Required outside `SHOP_ENV=local`;
    /// defaulted (to `admin-password-dev`) only there.
    #[serde(skip_serializing, default)]
    pub password: Option<SecretString>,
}

/// Repeated failed logins are refused for a while (429 with `Retry-After`), per
/// account and per client (see `crate::throttle`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThrottleSettings {
    /// Per e-mail: this many failed logins within `window_secs` lock it for
    /// `lockout_secs`.
    pub max_failures: i32,
    pub window_secs: i64,
    pub lockout_secs: i64,
    /// Per client (an IPv4 address or an IPv6 /64), across all e-mails: this many
    /// failed logins within `client_window_secs` refuse the client until the window
    /// ends, so one client cannot lock out (or guess at) every account.
    pub client_max_failures: i32,
    pub client_window_secs: i64,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDR ranges, e.g. the
    /// gateway's): `["10.0.0.0/8"]`. Empty (the default): the TCP peer is the client.
    pub trusted_proxies: Vec<TrustedProxy>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            service: ServiceSettings::defaults_for("user"),
            jwt: JwtSettings {
                issuer: "http://localhost:8081".to_owned(),
                audience: shop_auth::AUDIENCE.to_owned(),
                access_ttl_secs: 15 * 60,
                refresh_ttl_secs: 30 * 24 * 3600,
                refresh_family_ttl_secs: 90 * 24 * 3600,
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
                client_max_failures: 30,
                client_window_secs: 15 * 60,
                trusted_proxies: Vec::new(),
            },
            max_concurrent_hashes: 0,
        }
    }
}

impl Settings {
    /// Defaults, then `SHOP_CONFIG_FILE`, then `SHOP_*` variables, checked for the
    /// environment this process runs in ([`Settings::for_environment`]).
    pub fn load() -> anyhow::Result<Self> {
        shop_http::config::load(Self::default())?.for_environment(shop_http::config::is_local())
    }

    /// What start-up needs of loaded settings, given whether this is a developer
    /// machine (`SHOP_ENV=local`): there the seeded admin gets the documented dev
    /// password; anywhere else a missing one is an error, never a default.
    pub fn for_environment(mut self, local: bool) -> anyhow::Result<Self> {
        let missing = self
            .admin
            .password
            .as_ref()
            .is_none_or(|p| p.expose_secret().is_empty());
        if missing {
            if !local {
                anyhow::bail!(
                    "SHOP_ADMIN__PASSWORD is not set: outside SHOP_ENV=local it is required \
                     (the password of the admin account {} created at first start)",
                    self.admin.email
                );
            }
            self.admin.password = Some(SecretString::from(DEV_ADMIN_PASSWORD));
        }
        Ok(self)
    }
}

/// The seeded admin's password on a developer machine, and only there.
const DEV_ADMIN_PASSWORD: &str = "admin-password-dev";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_without_an_admin_password_fail_to_load_outside_local() {
        let error = Settings::default().for_environment(false).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("SHOP_ADMIN__PASSWORD"), "{message}");
        assert!(message.contains("admin@shop.local"), "{message}");

        let mut empty = Settings::default();
        empty.admin.password = Some(SecretString::from(""));
        assert!(
            empty.for_environment(false).is_err(),
            "an empty password is no password"
        );
    }

    #[test]
    fn only_a_local_run_gets_the_dev_admin_password() {
        let local = Settings::default().for_environment(true).unwrap();
        assert_eq!(
            local.admin.password.unwrap().expose_secret(),
            DEV_ADMIN_PASSWORD
        );

        let mut configured = Settings::default();
        configured.admin.password = Some(SecretString::from("from-a-secret"));
        let production = configured.for_environment(false).unwrap();
        assert_eq!(
            production.admin.password.unwrap().expose_secret(),
            "from-a-secret"
        );
    }
}
