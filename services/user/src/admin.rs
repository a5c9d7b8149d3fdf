//! The admin account, seeded at start-up from `SHOP_ADMIN__EMAIL` and
//! `SHOP_ADMIN__PASSWORD`.
//!
//! The seed only ever *creates* the admin. Registration is open and e-mail addresses
//! are not verified, so an account that already holds the admin e-mail proves nothing
//! about who made it: promoting it would hand the shop to whoever registered that
//! address first. Such an account makes the service refuse to start, and a human
//! decides. An existing admin is left as it is (its password included: the configured
//! one only creates the account).

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use shop_auth::Role;
use sqlx::PgPool;

use crate::config::AdminSettings;
use crate::error::Error;
use crate::password::Passwords;
use crate::requests::normalize_email;
use crate::users::{self, NewUser};

/// Creates the configured admin if no account holds its e-mail; fails if one does
/// that is not an admin.
pub async fn seed(db: &PgPool, passwords: &Passwords, admin: &AdminSettings) -> anyhow::Result<()> {
    let email = normalize_email(&admin.email);
    if let Some(existing) = users::find_by_email(db, &email).await? {
        return accept_existing(&email, &existing.roles);
    }
    let password = admin
        .password
        .as_ref()
        .filter(|p| !p.expose_secret().is_empty())
        .with_context(|| {
            format!("no admin account {email} and no password to create it (SHOP_ADMIN__PASSWORD)")
        })?;
    let hash = passwords
        .hash(SecretString::from(password.expose_secret().to_owned()))
        .await?;
    let new = NewUser {
        email: &email,
        name: "Administrator",
        password_hash: &hash,
        roles: &[Role::Customer, Role::Admin],
    };
    match users::insert(db, &new).await {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "admin account seeded");
            Ok(())
        }
        // Another replica seeded it, or someone registered it, since we looked.
        Err(Error::EmailTaken) => {
            let existing = users::find_by_email(db, &email)
                .await?
                .context("the admin e-mail was taken and then deleted during start-up")?;
            accept_existing(&email, &existing.roles)
        }
        Err(e) => Err(e).context("creating the admin account"),
    }
}

fn accept_existing(email: &str, roles: &users::Roles) -> anyhow::Result<()> {
    if roles.contains(Role::Admin) {
        tracing::debug!("admin account present");
        return Ok(());
    }
    anyhow::bail!(
        "the admin e-mail {email} (SHOP_ADMIN__EMAIL) belongs to an account that is not an \
         admin, probably registered by someone else; refusing to start rather than make it \
         an admin. Configure another SHOP_ADMIN__EMAIL, or, once you know who owns the \
         account, delete it or grant it the admin role by hand (see services/user/README.md)"
    )
}
