//! The `users` table: one row per account, its e-mail (trimmed, lower-cased, unique),
//! its argon2id password hash and its roles. Every statement on the table is here,
//! beside the types it loads; the routes call these functions.

use serde::Serialize;
use shop_auth::Role;
use shop_db::OnConstraint as _;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};

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

/// Roles as stored (`text[]`), parsed by `shop-auth` into the typed enum. A name it
/// does not know fails the read (a 500), rather than silently dropping a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Roles(pub Vec<Role>);

impl Roles {
    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }
}

impl TryFrom<Vec<String>> for Roles {
    type Error = <Role as std::str::FromStr>::Err;

    fn try_from(raw: Vec<String>) -> Result<Self, Self::Error> {
        raw.iter()
            .map(|r| r.parse())
            .collect::<Result<_, _>>()
            .map(Roles)
    }
}

/// The columns a [`User`] is loaded from.
const COLUMNS: &str = "id, email, name, roles, created_at";

/// An account to create. `email` must already be normalized
/// ([`crate::requests::normalize_email`]).
#[derive(Debug)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub roles: &'a [Role],
}

/// Creates the account; [`Error::EmailTaken`] if the e-mail exists (the unique
/// constraint decides, so two concurrent registrations cannot both win).
pub async fn insert(db: impl PgExecutor<'_>, new: &NewUser<'_>) -> Result<User> {
    let roles: Vec<&str> = new.roles.iter().map(|r| r.as_str()).collect();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, email, name, password_hash, roles)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(new.email)
    .bind(new.name)
    .bind(new.password_hash)
    .bind(roles)
    .fetch_one(db)
    .await
    .on_constraint("users_email_key", || Error::EmailTaken)
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<User>> {
    let user = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(user)
}

/// By normalized e-mail.
pub async fn find_by_email(db: impl PgExecutor<'_>, email: &str) -> Result<Option<User>> {
    let user = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(db)
    .await?;
    Ok(user)
}

/// What a login checks: the only read that loads the password hash.
#[derive(sqlx::FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub password_hash: String,
    #[sqlx(try_from = "Vec<String>")]
    pub roles: Roles,
}

/// By normalized e-mail.
pub async fn credentials(db: impl PgExecutor<'_>, email: &str) -> Result<Option<Credentials>> {
    let credentials = sqlx::query_as("SELECT id, password_hash, roles FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(db)
        .await?;
    Ok(credentials)
}

/// The account's current roles (read afresh at every refresh, so a promotion or a
/// demotion shows in the next access token); `None` if the account is gone.
pub async fn roles(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Roles>> {
    let roles: Option<Vec<String>> = sqlx::query_scalar("SELECT roles FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    roles
        .map(Roles::try_from)
        .transpose()
        .map_err(|e| Error::Internal(anyhow::anyhow!("users.roles of {id}: {e}")))
}

/// One page of users, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<Uuid>,
}

/// Up to `limit` users created after the user `after` (UUIDv7 ids sort by creation
/// time, so the id is a stable cursor).
pub async fn page(db: impl PgExecutor<'_>, after: Option<Uuid>, limit: u16) -> Result<UserPage> {
    let limit = usize::from(limit);
    // One more than asked: whether it comes back says whether there is a next page.
    let mut items: Vec<User> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(db)
    .await?;
    let next_after = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|u| u.id)
    } else {
        None
    };
    Ok(UserPage { items, next_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_roles_parse_and_an_unknown_one_is_an_error() {
        let roles = Roles::try_from(vec!["customer".to_owned(), "admin".to_owned()]).unwrap();
        assert_eq!(roles, Roles(vec![Role::Customer, Role::Admin]));
        assert!(roles.contains(Role::Admin));
        assert!(Roles::try_from(vec!["customer".to_owned(), "root".to_owned()]).is_err());
    }
}
