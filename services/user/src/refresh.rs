//! Refresh tokens: opaque random strings, stored only as SHA-256 hashes, rotated on
//! every use. A login starts a *family*; presenting a token that was already spent
//! revokes the whole family, which cuts off whoever stole one of them.

use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{Error, Result};

const PREFIX: &str = "rt_";

fn new_token() -> Result<(SecretString, Vec<u8>)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let token = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash(&token);
    Ok((SecretString::from(token), hash))
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Starts a new family (a login) and returns its first token.
pub async fn start_family(
    conn: &mut PgConnection,
    user_id: Uuid,
    ttl_secs: i64,
) -> Result<SecretString> {
    insert(conn, Uuid::now_v7(), user_id, ttl_secs).await
}

async fn insert(
    conn: &mut PgConnection,
    family_id: Uuid,
    user_id: Uuid,
    ttl_secs: i64,
) -> Result<SecretString> {
    let (token, token_hash) = new_token()?;
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
    )
    .bind(Uuid::now_v7())
    .bind(family_id)
    .bind(user_id)
    .bind(token_hash)
    .bind(ttl_secs as f64)
    .execute(conn)
    .await?;
    Ok(token)
}

#[derive(sqlx::FromRow)]
struct Stored {
    id: Uuid,
    family_id: Uuid,
    user_id: Uuid,
    expired: bool,
    used: bool,
    revoked: bool,
}

/// Spends `presented` and returns its user and the next token of the family.
pub async fn rotate(
    db: &PgPool,
    presented: &SecretString,
    ttl_secs: i64,
) -> Result<(Uuid, SecretString)> {
    let token_hash = hash(presented.expose_secret());
    let mut tx = db.begin().await?;
    // FOR UPDATE: two concurrent refreshes with one token are serialized, and the
    // second sees the token spent, exactly like a replay.
    let stored: Option<Stored> = sqlx::query_as(
        "SELECT id, family_id, user_id, expires_at <= now() AS expired,
                used_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(stored) = stored else {
        return Err(Error::InvalidRefreshToken);
    };
    if stored.revoked || stored.expired {
        return Err(Error::InvalidRefreshToken);
    }
    if stored.used {
        let revoked = revoke_family(&mut tx, stored.family_id).await?;
        tx.commit().await?;
        tracing::warn!(
            user_id = %stored.user_id,
            family_id = %stored.family_id,
            revoked,
            "refresh token reuse detected: family revoked"
        );
        return Err(Error::RefreshTokenReused);
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1")
        .bind(stored.id)
        .execute(&mut *tx)
        .await?;
    let next = insert(&mut tx, stored.family_id, stored.user_id, ttl_secs).await?;
    tx.commit().await?;
    Ok((stored.user_id, next))
}

/// Revokes the family `presented` belongs to (logout). Unknown tokens are ignored:
/// logging out twice is not an error.
pub async fn logout(db: &PgPool, presented: &SecretString) -> Result<u64> {
    let mut tx = db.begin().await?;
    let family: Option<Uuid> =
        sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(hash(presented.expose_secret()))
            .fetch_optional(&mut *tx)
            .await?;
    let revoked = match family {
        Some(family_id) => revoke_family(&mut tx, family_id).await?,
        None => 0,
    };
    tx.commit().await?;
    Ok(revoked)
}

async fn revoke_family(conn: &mut PgConnection, family_id: Uuid) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
