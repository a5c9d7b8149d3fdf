//! Refresh tokens: opaque random strings, stored only as SHA-256 hashes, rotated on
//! every use.
//!
//! A login starts a *family* (a row in `refresh_families`); each refresh spends the
//! presented token and adds the next one to the family. Presenting a token that was
//! already spent revokes the whole family, which cuts off whoever stole one of them.
//!
//! - **One at a time per family.** Rotation, logout and reuse-revocation first lock
//!   the family row (`FOR UPDATE`), then read and write its tokens. Without that, a
//!   logout could revoke the tokens it saw while a concurrent refresh was adding one
//!   it did not see, and that new token would outlive the logout.
//! - **Lifetimes.** A token is good for `refresh_ttl_secs` after it was issued; the
//!   family for `refresh_family_ttl_secs` after the login, however often it refreshes
//!   (no token outlives its family). Then the client logs in again.
//! - **A refresh retried after a lost response is a reuse.** The first request spent
//!   the token; the retry presents a spent token, which revokes the family, and the
//!   client has to log in again. We deliberately keep no grace period in which a spent
//!   token is accepted again: the server cannot tell the client's retry from a thief's
//!   replay, and the OAuth 2.0 Security BCP (RFC 9700, 4.14.2) makes reuse detection
//!   the point of rotation. Clients should not retry a refresh blindly.
//! - **Purging.** [`purge`] deletes what can no longer be used nor tells a reuse
//!   apart: tokens past their expiry and families past their end or revoked, after a
//!   grace period kept for investigation.

use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::JwtSettings;
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
    jwt: &JwtSettings,
) -> Result<SecretString> {
    let family_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO refresh_families (id, user_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(family_id)
    .bind(user_id)
    .bind(jwt.refresh_family_ttl_secs as f64)
    .execute(&mut *conn)
    .await?;
    insert(conn, family_id, user_id, jwt.refresh_ttl_secs).await
}

/// Adds a token to the family; it expires with the family at the latest.
async fn insert(
    conn: &mut PgConnection,
    family_id: Uuid,
    user_id: Uuid,
    ttl_secs: i64,
) -> Result<SecretString> {
    let (token, token_hash) = new_token()?;
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)
         SELECT $1, id, $3, $4, least(now() + make_interval(secs => $5), expires_at)
         FROM refresh_families WHERE id = $2",
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
struct Family {
    user_id: Uuid,
    revoked: bool,
    expired: bool,
}

/// Locks the family of the token with this hash (see the module doc for why every
/// change to a family starts here) and returns its id and state.
async fn lock_family(conn: &mut PgConnection, token_hash: &[u8]) -> Result<Option<(Uuid, Family)>> {
    let family_id: Option<Uuid> =
        sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(family_id) = family_id else {
        return Ok(None);
    };
    let family: Option<Family> = sqlx::query_as(
        "SELECT user_id, revoked_at IS NOT NULL AS revoked, expires_at <= now() AS expired
         FROM refresh_families WHERE id = $1 FOR UPDATE",
    )
    .bind(family_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(family.map(|f| (family_id, f)))
}

#[derive(sqlx::FromRow)]
struct Token {
    id: Uuid,
    expired: bool,
    used: bool,
}

/// Spends `presented` and returns its user and the next token of the family.
pub async fn rotate(
    db: &PgPool,
    presented: &SecretString,
    jwt: &JwtSettings,
) -> Result<(Uuid, SecretString)> {
    let token_hash = hash(presented.expose_secret());
    let mut tx = db.begin().await?;
    let Some((family_id, family)) = lock_family(&mut tx, &token_hash).await? else {
        return Err(Error::InvalidRefreshToken);
    };
    if family.revoked || family.expired {
        return Err(Error::InvalidRefreshToken);
    }
    // Read under the family's lock: a concurrent refresh of the same token has
    // committed by now, and this one sees the token spent, exactly like a replay.
    let token: Option<Token> = sqlx::query_as(
        "SELECT id, expires_at <= now() AS expired, used_at IS NOT NULL AS used
         FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(&token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    // Gone (purged since the first read) or expired: refused either way.
    let Some(token) = token.filter(|t| !t.expired) else {
        return Err(Error::InvalidRefreshToken);
    };
    if token.used {
        let revoked = revoke_locked(&mut tx, family_id).await?;
        tx.commit().await?;
        tracing::warn!(
            user_id = %family.user_id,
            %family_id,
            revoked,
            "refresh token reuse detected: family revoked"
        );
        return Err(Error::RefreshTokenReused);
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1")
        .bind(token.id)
        .execute(&mut *tx)
        .await?;
    let next = insert(&mut tx, family_id, family.user_id, jwt.refresh_ttl_secs).await?;
    tx.commit().await?;
    Ok((family.user_id, next))
}

/// Revokes the family `presented` belongs to (logout). Unknown tokens are ignored:
/// logging out twice is not an error. Returns how many tokens were still live.
pub async fn logout(db: &PgPool, presented: &SecretString) -> Result<u64> {
    let mut tx = db.begin().await?;
    let revoked = match lock_family(&mut tx, &hash(presented.expose_secret())).await? {
        Some((family_id, _)) => revoke_locked(&mut tx, family_id).await?,
        None => 0,
    };
    tx.commit().await?;
    Ok(revoked)
}

/// Revokes a family: every later rotation in it is refused. Its row must be locked by
/// this transaction, so no token is being added meanwhile.
async fn revoke_locked(conn: &mut PgConnection, family_id: Uuid) -> Result<u64> {
    sqlx::query(
        "UPDATE refresh_families SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    // The family's mark is what rotation checks; the tokens are marked too so that
    // each row says what became of it.
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes tokens expired more than `keep` ago, and families (with their tokens)
/// that ended or were revoked more than `keep` ago. Returns how many rows went.
///
/// A spent token is kept while it is valid, so that presenting it again is still
/// recognized as a reuse; once expired it is refused either way.
pub async fn purge(db: &PgPool, keep: Duration) -> Result<u64> {
    let deleted: i64 = sqlx::query_scalar(
        "WITH families AS (
             DELETE FROM refresh_families
             WHERE expires_at < now() - make_interval(secs => $1)
                OR revoked_at < now() - make_interval(secs => $1)
             RETURNING id
         ), tokens AS (
             DELETE FROM refresh_tokens
             WHERE expires_at < now() - make_interval(secs => $1)
                OR family_id IN (SELECT id FROM families)
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM families) + (SELECT count(*) FROM tokens)",
    )
    .bind(keep.as_secs_f64())
    .fetch_one(db)
    .await?;
    Ok(deleted as u64)
}

/// How long expired or revoked tokens and families stay before the purge deletes
/// them: long enough to investigate a reuse alert after the fact.
pub const KEEP_ENDED: Duration = Duration::from_secs(7 * 24 * 3600);

/// The hourly housekeeping job the app schedules (see `app.rs`).
pub async fn purge_job(db: PgPool) -> anyhow::Result<()> {
    let purged = purge(&db, KEEP_ENDED).await?;
    tracing::debug!(purged, "ended refresh tokens purged");
    Ok(())
}
