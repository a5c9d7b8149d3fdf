//! Idempotent placement: the table `idempotency_keys`, one row per (user,
//! `Idempotency-Key`), naming the order the key created and the SHA-256 of the request
//! that created it.
//!
//! - **Scoped to the user**: two customers may use the same key; the key is only
//!   looked up among the caller's own.
//! - **Claimed in the order's transaction**: `INSERT .. ON CONFLICT` on the primary
//!   key. Of several identical requests at once, exactly one inserts; the others wait
//!   on its row until it commits, then find it and answer with its order. If it rolls
//!   back, one of them inserts instead. No order is ever created twice for one key.
//! - **Same key, same request** (same fingerprint): the same order again. **Same key,
//!   another request**: refused (422), nothing written.
//! - **Expiry**: a key is remembered for `SHOP_IDEMPOTENCY__KEY_TTL_SECS` (24 h by
//!   default). An expired key is ignored and may be claimed again; the
//!   `purge-idempotency-keys` job deletes expired rows.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use shop_http::{FieldError, Problem};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The request header (draft-ietf-httpapi-idempotency-key-header).
pub const HEADER: &str = "Idempotency-Key";
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A well-formed key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// The key the request carries; a missing or malformed one is a 400 naming the
    /// header (the draft's answer for a request that needs the header).
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, Problem> {
        let refuse = |code: &str, message: &str| {
            let mut problem = Problem::new(
                StatusCode::BAD_REQUEST,
                "idempotency-key",
                "A valid Idempotency-Key header is required.",
            )
            .with_detail(format!("`{HEADER}` {message}"));
            problem.errors = vec![FieldError::new(HEADER, code, message)];
            problem
        };
        let mut values = headers.get_all(HEADER).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(refuse(
                "required",
                "must be sent once, with a key unique to this order (a UUID will do)",
            ));
        };
        let raw = value.as_bytes();
        if raw.is_empty() || raw.len() > MAX_KEY_LEN {
            return Err(refuse("out_of_range", "must be 1 to 255 characters long"));
        }
        if !raw.iter().all(u8::is_ascii_graphic) {
            return Err(refuse(
                "invalid_format",
                "must be visible ASCII characters only",
            ));
        }
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// As an extractor placed before the body, a missing or malformed key is refused
/// before the body is even read.
impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        Self::from_headers(&parts.headers)
    }
}

/// What a key says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours: the order `order_id` may be created.
    Claimed,
    /// The key already names an order.
    Taken {
        order_id: Uuid,
        /// Whether the request that took it is this same request.
        same_request: bool,
    },
}

/// The key's order, if the caller used the key before and it has not expired: lets
/// a retry be answered without asking the catalog again.
pub async fn find(
    db: &PgPool,
    user_id: Uuid,
    key: &Key,
    fingerprint: &[u8],
) -> sqlx::Result<Option<Claim>> {
    let row: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT order_id, request_hash FROM idempotency_keys
         WHERE user_id = $1 AND key = $2 AND expires_at > now()",
    )
    .bind(user_id)
    .bind(key.as_str())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(order_id, hash)| Claim::Taken {
        order_id,
        same_request: hash == fingerprint,
    }))
}

/// Claims the key for `order_id` in the transaction that creates the order, or says
/// which order has it. Waits if a concurrent transaction holds the key, until that
/// one commits (then the key is `Taken`) or rolls back (then it is ours).
pub async fn claim(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &Key,
    fingerprint: &[u8],
    order_id: Uuid,
    ttl: Duration,
) -> sqlx::Result<Claim> {
    // An expired key is taken over (DO UPDATE .. WHERE expired); a live one is left
    // alone, and then RETURNING gives nothing.
    let claimed: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::double precision))
         ON CONFLICT (user_id, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, order_id = EXCLUDED.order_id,
                created_at = now(), expires_at = EXCLUDED.expires_at
            WHERE idempotency_keys.expires_at <= now()
         RETURNING order_id",
    )
    .bind(user_id)
    .bind(key.as_str())
    .bind(fingerprint)
    .bind(order_id)
    .bind(ttl.as_secs_f64())
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        return Ok(Claim::Claimed);
    }
    // A new statement sees what the winner committed (READ COMMITTED).
    let (order_id, hash): (Uuid, Vec<u8>) = sqlx::query_as(
        "SELECT order_id, request_hash FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user_id)
    .bind(key.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Claim::Taken {
        order_id,
        same_request: hash == fingerprint,
    })
}

/// Deletes expired keys, a batch at a time; returns how many.
pub async fn purge_expired(db: &PgPool) -> sqlx::Result<u64> {
    let mut purged = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM idempotency_keys WHERE ctid IN (
                 SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT 1000)",
        )
        .execute(db)
        .await?
        .rows_affected();
        purged += deleted;
        if deleted < 1000 {
            return Ok(purged);
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(HEADER, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    #[test]
    fn a_key_is_one_header_of_1_to_255_visible_ascii_characters() {
        let ok = Key::from_headers(&headers(&[b"3f6c2a8e-checkout-1"])).unwrap();
        assert_eq!(ok.as_str(), "3f6c2a8e-checkout-1");
        let longest = vec![b'k'; MAX_KEY_LEN];
        assert!(Key::from_headers(&headers(&[&longest])).is_ok());

        let too_long = vec![b'k'; MAX_KEY_LEN + 1];
        for (bad, code) in [
            (headers(&[]), "required"),
            (headers(&[b"a", b"b"]), "required"),
            (headers(&[b""]), "out_of_range"),
            (headers(&[&too_long]), "out_of_range"),
            (headers(&[b"with space"]), "invalid_format"),
            (headers(&[b"caf\xc3\xa9"]), "invalid_format"),
        ] {
            let problem = Key::from_headers(&bad).unwrap_err();
            assert_eq!(problem.status, 400);
            assert_eq!(problem.errors[0].field, HEADER);
            assert_eq!(problem.errors[0].code, code);
        }
    }
}
