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

/// The inverse of [`Role::as_str`]: what a service reads back from its own storage.
/// Exact and case-sensitive, like the serde form, so a role is spelled one way only.
impl std::str::FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "customer" => Ok(Role::Customer),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// A role name this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

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

    /// Whose records the caller may see, the rule of every owned resource (orders,
    /// payments, shipments): `None` for an admin (everyone's), else the caller's own.
    pub fn owner_scope(&self) -> Option<Uuid> {
        (!self.has_role(Role::Admin)).then_some(self.sub)
    }

    /// Whether the caller may see a record owned by `owner`: an admin, or its owner.
    pub fn may_see(&self, owner: Uuid) -> bool {
        self.owner_scope().is_none_or(|me| me == owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_back_from_its_name_and_nothing_else_does() {
        for role in [Role::Customer, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            // The same spelling as the JSON form the tokens carry.
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        for bad in ["", "Admin", " admin", "root"] {
            assert_eq!(bad.parse::<Role>(), Err(UnknownRole(bad.to_owned())));
        }
    }

    fn claims(roles: Vec<Role>) -> Claims {
        Claims {
            sub: Uuid::from_u128(7),
            iss: "issuer".to_owned(),
            aud: "shop".to_owned(),
            roles,
            exp: 0,
            iat: 0,
            jti: Uuid::from_u128(1),
        }
    }

    #[test]
    fn a_customer_sees_only_their_own_records_and_an_admin_sees_everyones() {
        let customer = claims(vec![Role::Customer]);
        assert_eq!(customer.owner_scope(), Some(Uuid::from_u128(7)));
        assert!(customer.may_see(Uuid::from_u128(7)));
        assert!(!customer.may_see(Uuid::from_u128(8)));
        let admin = claims(vec![Role::Customer, Role::Admin]);
        assert_eq!(admin.owner_scope(), None);
        assert!(admin.may_see(Uuid::from_u128(8)));
    }
}
