//! Authentication for every service: verify the user service's EdDSA access tokens
//! against its JWKS (cached, refreshed when a new key id appears), typed claims, and
//! extractors that require a valid token or a role.

mod claims;
mod extract;
mod openapi;
mod settings;
pub mod signing_key;
mod verifier;

pub use claims::{Claims, Role};
pub use extract::{Admin, AdminRole, Authenticated, RequireRole, RequiredRole};
pub use openapi::BearerAuth;
pub use settings::AuthSettings;
pub use verifier::{AuthError, Verifier, VerifierBuilder};

/// The audience every shop access token is issued for.
pub const AUDIENCE: &str = "shop";
