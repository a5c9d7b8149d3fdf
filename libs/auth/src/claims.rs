//! What an access token says about its bearer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A role: what a caller may do. Kept small on purpose (RBAC with two roles); finer
/// rules (a customer sees only their own orders) are checked by the service that
/// owns the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims of a shop access token (an EdDSA-signed JWT issued by the user service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the user service's configured issuer URL.
    pub iss: String,
    /// Audience: who the token is for (`shop`).
    pub aud: String,
    /// Subject: the user id.
    pub sub: Uuid,
    pub roles: Vec<Role>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Token id, unique per token (for audit and future revocation lists).
    pub jti: Uuid,
}

impl Claims {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn user_id(&self) -> Uuid {
        self.sub
    }
}
