//! Verifying access tokens against the issuer's published key set (JWKS).
//!
//! The key set is fetched from the user service and cached. A token signed with a key
//! id we have not seen makes us fetch the set again (that is how a key rotation
//! reaches every service without a restart), but at most once per `min_refresh`, so a
//! flood of forged key ids cannot turn into a flood of fetches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::{Mutex, RwLock};

use crate::claims::Claims;

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token in the Authorization header")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token is signed with an unknown key `{0}`")]
    UnknownKey(String),
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("the caller lacks the `{0}` role")]
    Forbidden(&'static str),
    #[error("the key set could not be fetched: {0}")]
    KeysUnavailable(String),
}

/// Where the verification keys come from.
enum KeySource {
    /// Keys handed over at construction (the issuer verifying its own tokens, tests).
    Fixed,
    /// A JWKS URL, fetched on demand.
    Remote {
        url: String,
        client: reqwest::Client,
    },
}

struct Cache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

struct Inner {
    source: KeySource,
    validation: Validation,
    cache: RwLock<Cache>,
    refresh_lock: Mutex<()>,
    min_refresh: Duration,
    max_age: Duration,
}

/// Verifies shop access tokens. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// Verifies with a fixed key set (no fetching).
    pub fn with_keys(jwks: &JwkSet, issuer: &str, audience: &str) -> Self {
        let verifier = Self::build(KeySource::Fixed, issuer, audience, Duration::ZERO);
        let keys = decoding_keys(jwks);
        // A fresh verifier has no other holders, so try_write cannot fail.
        if let Ok(mut cache) = verifier.inner.cache.try_write() {
            cache.keys = keys;
            cache.fetched_at = Some(Instant::now());
        }
        verifier
    }

    /// Verifies with keys fetched from a JWKS URL.
    pub fn remote(jwks_url: impl Into<String>, issuer: &str, audience: &str) -> Self {
        Self::remote_with_min_refresh(jwks_url, issuer, audience, Duration::from_secs(5))
    }

    /// As [`Verifier::remote`], with the shortest interval between two fetches
    /// triggered by unknown key ids (tests use zero).
    pub fn remote_with_min_refresh(
        jwks_url: impl Into<String>,
        issuer: &str,
        audience: &str,
        min_refresh: Duration,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap_or_default();
        Self::build(
            KeySource::Remote {
                url: jwks_url.into(),
                client,
            },
            issuer,
            audience,
            min_refresh,
        )
    }

    fn build(source: KeySource, issuer: &str, audience: &str, min_refresh: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Self {
            inner: Arc::new(Inner {
                source,
                validation,
                cache: RwLock::new(Cache {
                    keys: HashMap::new(),
                    fetched_at: None,
                }),
                refresh_lock: Mutex::new(()),
                min_refresh,
                max_age: Duration::from_secs(300),
            }),
        }
    }

    /// Checks the signature, issuer, audience and expiry and returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Malformed("no `kid` in the header".into()))?;
        let key = self.key(&kid).await?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            },
        )?;
        Ok(data.claims)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let cache = self.inner.cache.read().await;
            let fresh = cache
                .fetched_at
                .is_some_and(|t| t.elapsed() < self.inner.max_age);
            let usable = fresh || matches!(self.inner.source, KeySource::Fixed);
            if let Some(key) = cache.keys.get(kid).filter(|_| usable) {
                return Ok(key.clone());
            }
        }
        self.refresh(false).await?;
        let cache = self.inner.cache.read().await;
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::UnknownKey(kid.to_owned()))
    }

    /// Fetches the key set again (no-op for fixed keys). Unless `force`, a fetch that
    /// happened less than `min_refresh` ago counts as fresh enough.
    pub async fn refresh(&self, force: bool) -> Result<(), AuthError> {
        let KeySource::Remote { url, client } = &self.inner.source else {
            return Ok(());
        };
        // One fetch at a time; whoever waited behind it sees its result.
        let _guard = self.inner.refresh_lock.lock().await;
        let last = self.inner.cache.read().await.fetched_at;
        if !force && last.is_some_and(|t| t.elapsed() < self.inner.min_refresh) {
            return Ok(());
        }
        let jwks: JwkSet = async {
            client
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e: reqwest::Error| AuthError::KeysUnavailable(e.to_string()))?;
        let keys = decoding_keys(&jwks);
        tracing::info!(url = %url, keys = keys.len(), "fetched the JWKS");
        let mut cache = self.inner.cache.write().await;
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        Ok(())
    }
}

fn decoding_keys(jwks: &JwkSet) -> HashMap<String, DecodingKey> {
    jwks.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => Some((kid, key)),
                Err(e) => {
                    tracing::warn!(%kid, error = %e, "skipping a JWK we cannot use");
                    None
                }
            }
        })
        .collect()
}
