//! Where a verifier finds the user service's keys, and what tokens must say: the
//! `SHOP_AUTH__*` settings every service and the gateway embed.

use serde::{Deserialize, Serialize};

use crate::Verifier;

/// Verifying the user service's access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSettings {
    /// The user service's key set (`SHOP_AUTH__JWKS_URL`).
    pub jwks_url: String,
    /// The `iss` every token must carry (`SHOP_AUTH__ISSUER`).
    pub issuer: String,
    /// The `aud` every token must carry (`SHOP_AUTH__AUDIENCE`).
    pub audience: String,
}

impl Default for AuthSettings {
    /// The local user service (`make up`).
    fn default() -> Self {
        Self {
            jwks_url: "http://127.0.0.1:8081/.well-known/jwks.json".to_owned(),
            issuer: "http://localhost:8081".to_owned(),
            audience: crate::AUDIENCE.to_owned(),
        }
    }
}

impl AuthSettings {
    /// The production verifier: the key set fetched from `jwks_url` and cached.
    pub fn verifier(&self) -> Verifier {
        Verifier::remote(self.jwks_url.clone(), &self.issuer, &self.audience)
    }
}
