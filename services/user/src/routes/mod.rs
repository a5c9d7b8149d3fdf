//! The user service's HTTP API, one module per resource.

pub mod auth;
pub mod jwks;
pub mod users;

use serde::Serialize;
use shop_auth::Role;
use utoipa::ToSchema;
use uuid::Uuid;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "id": "01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e5f",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "roles": ["customer"],
    "created_at": "2026-11-21T12:00:00Z"
}))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[sqlx(try_from = "Vec<String>")]
    pub roles: Roles,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Roles as stored (`text[]`), parsed into the typed enum.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Roles(pub Vec<Role>);

impl TryFrom<Vec<String>> for Roles {
    type Error = String;

    fn try_from(raw: Vec<String>) -> Result<Self, Self::Error> {
        raw.iter()
            .map(|r| match r.as_str() {
                "customer" => Ok(Role::Customer),
                "admin" => Ok(Role::Admin),
                other => Err(format!("unknown role {other}")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Roles)
    }
}

pub const USER_COLUMNS: &str = "id, email, name, roles, created_at";

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIuLi4ifQ.c2ln",
    "refresh_token": "rt_Vb3k2m0W8q1lQ6y2c8JtV0oYfXh1r4aGmN7sE9dK5uI",
    "token_type": "Bearer",
    "expires_in": 900
}))]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}
