//! Layered configuration: defaults in code, then an optional TOML file
//! (`SHOP_CONFIG_FILE`), then `SHOP_*` environment variables (`__` separates nested
//! keys: `SHOP_JWT__ISSUER`). Secrets are `secrecy::SecretString` and never print.

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Loads settings of type `T` over the given defaults.
pub fn load<T: Serialize + DeserializeOwned>(defaults: T) -> anyhow::Result<T> {
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Ok(file) = std::env::var("SHOP_CONFIG_FILE") {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment = figment.merge(Env::prefixed("SHOP_").split("__"));
    Ok(figment.extract()?)
}

/// Whether this process runs on a developer machine (`SHOP_ENV=local`, the default of
/// `make up` and the tests). Only there do development defaults (a generated signing
/// key, the seeded admin's password) apply.
pub fn is_local() -> bool {
    std::env::var("SHOP_ENV")
        .map(|v| v == "local")
        .unwrap_or(false)
}
