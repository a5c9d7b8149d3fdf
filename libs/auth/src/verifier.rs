//! Verifying access tokens against the issuer's published key set (JWKS).
//!
//! The key set is fetched from the user service and cached. How the cache behaves when
//! the issuer is slow or down decides whether one service's outage becomes everyone's:
//!
//! - A token signed by a cached key is verified with that key, however old the cache.
//!   Past `max_age` the cache is refreshed in the background (at most one refresh in
//!   flight, retried with capped, jittered exponential backoff while the issuer is
//!   down); the request never waits for it. Key removal (revocation) therefore reaches
//!   a verifier within `max_age` of the issuer being reachable.
//! - A token signed with a key id we have not seen makes the request fetch the set
//!   itself (that is how a key rotation reaches every service without a restart), but
//!   at most once per `min_refresh`, counting every attempt, so a flood of forged key
//!   ids cannot turn into a flood of fetches, even while the issuer is down.
//! - With no usable key for a token and the last fetch failed, the answer is
//!   [`AuthError::KeysUnavailable`] (503): we cannot tell whether the token is good.
//!
//! A token that passed is remembered, by its exact text, with its claims until it
//! expires ([`Verified`]): a client sends the same token on every request for its
//! lifetime, and the signature check is most of what verifying costs (an Ed25519
//! verification, ~50 µs, against a hash lookup). Any other text, a single changed
//! byte included, is checked in full. Every successful fetch of the key set forgets
//! them all, so a key withdrawn by the issuer stops verifying its tokens here as soon
//! as the set without it is fetched.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::Mutex;

use crate::claims::Claims;

/// Why a token was not accepted.
///
/// The `Display` text is for the log: it may quote the token's header or the JWT
/// library. Clients get a fixed message per kind (see the `IntoResponse` impl).
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

const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(5);
/// As long as the issuer lets verifiers cache its JWKS (`Cache-Control: max-age=300`).
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_BACKOFF_FIRST: Duration = Duration::from_secs(1);
const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(60);

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
    /// The last successful fetch.
    fetched_at: Option<Instant>,
    /// The last fetch, successful or not: what `min_refresh` and the backoff count from.
    attempted_at: Option<Instant>,
    /// Why the last fetch failed, if it did.
    last_error: Option<String>,
}

impl Cache {
    fn is_stale(&self, max_age: Duration) -> bool {
        self.fetched_at.is_none_or(|t| t.elapsed() >= max_age)
    }

    fn attempted_within(&self, period: Duration) -> bool {
        self.attempted_at.is_some_and(|t| t.elapsed() < period)
    }

    /// How long to hold off the next background attempt: while fetches fail, attempts
    /// (a request's or the background's) are at least `pause` apart.
    fn retry_wait(&self, pause: Duration) -> Duration {
        match (&self.last_error, self.attempted_at) {
            (Some(_), Some(at)) => pause.saturating_sub(at.elapsed()),
            _ => Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Policy {
    min_refresh: Duration,
    max_age: Duration,
    backoff_first: Duration,
    backoff_cap: Duration,
}

/// At most this many verified tokens are remembered (a few MiB at most).
const MAX_VERIFIED: usize = 4096;

/// Tokens verified already, with their claims. Bounded: when full, expired entries go,
/// and if that frees nothing, everything does (the next requests verify again).
#[derive(Default)]
struct Verified {
    tokens: HashMap<Box<str>, Claims>,
    /// Bumped by every fetch of the key set: a verification that started under an
    /// older set is not remembered.
    generation: u64,
}

impl Verified {
    /// The claims of `token` if it was verified and is not expired at `now` (seconds
    /// since the epoch), allowing the same `leeway` as the full check.
    fn get(&self, token: &str, now: i64, leeway: i64) -> Option<Claims> {
        self.tokens
            .get(token)
            .filter(|claims| claims.exp.saturating_add(leeway) > now)
            .cloned()
    }

    /// Remembers a verified token unless the key set changed since `generation`.
    fn insert(&mut self, token: &str, claims: &Claims, generation: u64, now: i64, leeway: i64) {
        if generation != self.generation {
            return;
        }
        if self.tokens.len() >= MAX_VERIFIED {
            self.tokens
                .retain(|_, claims| claims.exp.saturating_add(leeway) > now);
            if self.tokens.len() >= MAX_VERIFIED {
                self.tokens.clear();
            }
        }
        self.tokens.insert(token.into(), claims.clone());
    }

    /// A new key set: nothing verified before counts.
    fn forget(&mut self) {
        self.tokens.clear();
        self.generation += 1;
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct Inner {
    source: KeySource,
    validation: Validation,
    verified: RwLock<Verified>,
    // A std lock: it is never held across an await, so readers never wait on a fetch.
    cache: RwLock<Cache>,
    /// One fetch at a time, whoever starts it.
    fetching: Mutex<()>,
    /// Whether a background refresh task is running.
    refreshing: AtomicBool,
    policy: Policy,
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

/// Options of a [`Verifier`] that fetches its keys; from [`Verifier::builder`].
#[derive(Debug, Clone)]
pub struct VerifierBuilder {
    jwks_url: String,
    issuer: String,
    audience: String,
    policy: Policy,
    fetch_timeout: Duration,
}

impl VerifierBuilder {
    /// The shortest interval between two fetches triggered by unknown key ids
    /// (default 5 s; tests use zero).
    pub fn min_refresh(mut self, interval: Duration) -> Self {
        self.policy.min_refresh = interval;
        self
    }

    /// How old the cached key set may get before it is refreshed in the background
    /// (default 300 s). Cached keys keep verifying past it until a refresh succeeds.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.policy.max_age = age;
        self
    }

    /// The wait after the first failed background refresh, doubled after each further
    /// failure up to `cap` (defaults 1 s and 60 s). Each wait is jittered.
    pub fn retry_backoff(mut self, first: Duration, cap: Duration) -> Self {
        self.policy.backoff_first = first;
        self.policy.backoff_cap = cap.max(first);
        self
    }

    /// How long one fetch of the key set may take (default 3 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    pub fn build(self) -> Verifier {
        let client = reqwest::Client::builder()
            .timeout(self.fetch_timeout)
            .build()
            .unwrap_or_default();
        Verifier::new(
            KeySource::Remote {
                url: self.jwks_url,
                client,
            },
            &self.issuer,
            &self.audience,
            self.policy,
        )
    }
}

impl Verifier {
    /// Verifies with a fixed key set (no fetching).
    pub fn with_keys(jwks: &JwkSet, issuer: &str, audience: &str) -> Self {
        let policy = Policy {
            min_refresh: Duration::ZERO,
            max_age: Duration::MAX,
            backoff_first: DEFAULT_BACKOFF_FIRST,
            backoff_cap: DEFAULT_BACKOFF_CAP,
        };
        let verifier = Self::new(KeySource::Fixed, issuer, audience, policy);
        {
            let mut cache = verifier.write_cache();
            cache.keys = decoding_keys(jwks);
            cache.fetched_at = Some(Instant::now());
        }
        verifier
    }

    /// Verifies with keys fetched from a JWKS URL, with the default options.
    pub fn remote(jwks_url: impl Into<String>, issuer: &str, audience: &str) -> Self {
        Self::builder(jwks_url, issuer, audience).build()
    }

    /// As [`Verifier::remote`], with the shortest interval between two fetches
    /// triggered by unknown key ids (tests use zero).
    pub fn remote_with_min_refresh(
        jwks_url: impl Into<String>,
        issuer: &str,
        audience: &str,
        min_refresh: Duration,
    ) -> Self {
        Self::builder(jwks_url, issuer, audience)
            .min_refresh(min_refresh)
            .build()
    }

    /// A verifier fetching its keys from a JWKS URL, with options.
    pub fn builder(jwks_url: impl Into<String>, issuer: &str, audience: &str) -> VerifierBuilder {
        VerifierBuilder {
            jwks_url: jwks_url.into(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            policy: Policy {
                min_refresh: DEFAULT_MIN_REFRESH,
                max_age: DEFAULT_MAX_AGE,
                backoff_first: DEFAULT_BACKOFF_FIRST,
                backoff_cap: DEFAULT_BACKOFF_CAP,
            },
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }

    fn new(source: KeySource, issuer: &str, audience: &str, policy: Policy) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Self {
            inner: Arc::new(Inner {
                source,
                validation,
                verified: RwLock::new(Verified::default()),
                cache: RwLock::new(Cache {
                    keys: HashMap::new(),
                    fetched_at: None,
                    attempted_at: None,
                    last_error: None,
                }),
                fetching: Mutex::new(()),
                refreshing: AtomicBool::new(false),
                policy,
            }),
        }
    }

    /// Checks the signature, issuer, audience and expiry and returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let leeway = self.inner.validation.leeway as i64;
        let generation = {
            let verified = self
                .inner
                .verified
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(claims) = verified.get(token, unix_now(), leeway) {
                return Ok(claims);
            }
            verified.generation
        };
        let claims = self.verify_in_full(token).await?;
        self.inner
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, &claims, generation, unix_now(), leeway);
        Ok(claims)
    }

    /// The whole check: header, key, signature, claims.
    async fn verify_in_full(&self, token: &str) -> Result<Claims, AuthError> {
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
        if let Some(key) = self.cached_key(kid) {
            return Ok(key);
        }
        if !self.is_remote() {
            return Err(AuthError::UnknownKey(kid.to_owned()));
        }
        {
            // The key is not in hand, so this request has to wait for a fetch; but
            // only one per `min_refresh`, or forged key ids would become a flood.
            let _one_at_a_time = self.inner.fetching.lock().await;
            if !self
                .read_cache()
                .attempted_within(self.inner.policy.min_refresh)
            {
                // A failure is recorded in the cache and reported just below.
                let _ = self.fetch().await;
            }
        }
        if let Some(key) = self.cached_key(kid) {
            return Ok(key);
        }
        let cache = self.read_cache();
        Err(match &cache.last_error {
            // We cannot tell a forged key id from a new key we failed to fetch.
            Some(error) => AuthError::KeysUnavailable(error.clone()),
            None => AuthError::UnknownKey(kid.to_owned()),
        })
    }

    /// The cached key of this id, however old; a stale cache starts a background
    /// refresh but is still used meanwhile.
    fn cached_key(&self, kid: &str) -> Option<DecodingKey> {
        let (key, stale) = {
            let cache = self.read_cache();
            let stale = self.is_remote() && cache.is_stale(self.inner.policy.max_age);
            (cache.keys.get(kid).cloned(), stale)
        };
        if stale {
            self.refresh_in_background();
        }
        key
    }

    /// Fetches the key set again (no-op for fixed keys), waiting for it. Unless
    /// `force`, a fetch that succeeded less than `min_refresh` ago counts as fresh
    /// enough.
    pub async fn refresh(&self, force: bool) -> Result<(), AuthError> {
        if !self.is_remote() {
            return Ok(());
        }
        let _one_at_a_time = self.inner.fetching.lock().await;
        let min_refresh = self.inner.policy.min_refresh;
        if !force
            && self
                .read_cache()
                .fetched_at
                .is_some_and(|t| t.elapsed() < min_refresh)
        {
            return Ok(());
        }
        self.fetch().await
    }

    /// One fetch, its outcome recorded in the cache. Callers hold `fetching`.
    async fn fetch(&self) -> Result<(), AuthError> {
        let KeySource::Remote { url, client } = &self.inner.source else {
            return Ok(());
        };
        let fetched: Result<JwkSet, reqwest::Error> = async {
            client
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await;
        let mut cache = self.write_cache();
        cache.attempted_at = Some(Instant::now());
        match fetched {
            Ok(jwks) => {
                cache.keys = decoding_keys(&jwks);
                self.inner
                    .verified
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .forget();
                cache.fetched_at = cache.attempted_at;
                cache.last_error = None;
                tracing::info!(url = %url, keys = cache.keys.len(), "fetched the JWKS");
                Ok(())
            }
            Err(e) => {
                let error = e.to_string();
                tracing::warn!(
                    url = %url,
                    error = %error,
                    cached_keys = cache.keys.len(),
                    "could not fetch the JWKS; cached keys stay in use"
                );
                cache.last_error = Some(error.clone());
                Err(AuthError::KeysUnavailable(error))
            }
        }
    }

    /// Starts the background refresh unless one is already running.
    fn refresh_in_background(&self) {
        if self.inner.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.refreshing.store(false, Ordering::Release);
            return;
        };
        let running = RefreshRunning(Arc::downgrade(&self.inner));
        runtime.spawn(refresh_until_fresh(running));
    }

    fn is_remote(&self) -> bool {
        matches!(self.inner.source, KeySource::Remote { .. })
    }

    fn read_cache(&self) -> RwLockReadGuard<'_, Cache> {
        // Nothing panics while holding the lock; should it, the cache is still whole.
        self.inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> RwLockWriteGuard<'_, Cache> {
        self.inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Owned by the background refresh task: clears the "running" flag however the task
/// ends, including being dropped with its runtime.
struct RefreshRunning(Weak<Inner>);

impl Drop for RefreshRunning {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.refreshing.store(false, Ordering::Release);
        }
    }
}

/// Refreshes the key set until a fetch succeeds (or someone else's does), backing off
/// while the issuer fails. Holds the verifier only weakly, so dropping every `Verifier`
/// ends it.
async fn refresh_until_fresh(running: RefreshRunning) {
    let Some(policy) = running.0.upgrade().map(|inner| inner.policy) else {
        return;
    };
    let mut backoff = policy.backoff_first;
    let mut pause = jittered(backoff);
    loop {
        let Some(inner) = running.0.upgrade() else {
            return;
        };
        let verifier = Verifier { inner };
        let step = {
            let _one_at_a_time = verifier.inner.fetching.lock().await;
            // Decided under the lock: a request's fetch may have just ended either way.
            let (wait, stale) = {
                let cache = verifier.read_cache();
                (cache.retry_wait(pause), cache.is_stale(policy.max_age))
            };
            if !wait.is_zero() {
                Step::Wait(wait)
            } else if !stale || verifier.fetch().await.is_ok() {
                // Fresh already (someone else's fetch), or now.
                Step::Done
            } else {
                pause = jittered(backoff);
                backoff = backoff.saturating_mul(2).min(policy.backoff_cap);
                Step::Retry
            }
        };
        match step {
            Step::Done => return,
            Step::Retry => {}
            Step::Wait(wait) => {
                // Not holding the verifier while asleep, so it can be dropped.
                drop(verifier);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

enum Step {
    Done,
    Retry,
    Wait(Duration),
}

/// Between half and all of `delay`, so replicas that lost the issuer together do not
/// all come back to it in the same instant.
fn jittered(delay: Duration) -> Duration {
    // A randomly keyed hasher is random enough for spreading retries, and needs no
    // dependency.
    let random = RandomState::new().hash_one(Instant::now());
    let fraction = (random % 1024) as f64 / 1024.0;
    delay.mul_f64(0.5 + fraction / 2.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "issuer".into(),
            aud: "shop".into(),
            sub: uuid::Uuid::nil(),
            roles: vec![],
            exp,
            iat: exp - 900,
            jti: uuid::Uuid::nil(),
        }
    }

    #[test]
    fn a_remembered_token_counts_until_its_expiry_plus_the_leeway_and_only_by_its_exact_text() {
        let mut verified = Verified::default();
        verified.insert("a.b.c", &claims(1_000), 0, 900, 30);
        assert_eq!(verified.get("a.b.c", 1_029, 30), Some(claims(1_000)));
        assert_eq!(verified.get("a.b.c", 1_030, 30), None, "expired");
        assert_eq!(verified.get("a.b.d", 900, 30), None, "another text");
        assert_eq!(verified.get("a.b.", 900, 30), None);
    }

    #[test]
    fn a_new_key_set_forgets_every_token_and_a_verification_begun_before_it_is_not_kept() {
        let mut verified = Verified::default();
        verified.insert("old", &claims(1_000), 0, 900, 30);
        let begun_under = verified.generation;
        verified.forget();
        assert_eq!(verified.get("old", 900, 30), None);
        verified.insert("late", &claims(1_000), begun_under, 900, 30);
        assert_eq!(
            verified.get("late", 900, 30),
            None,
            "verified with the old keys"
        );
        verified.insert("new", &claims(1_000), verified.generation, 900, 30);
        assert!(verified.get("new", 900, 30).is_some());
    }

    #[test]
    fn the_memory_is_bounded_expired_tokens_going_first() {
        let mut verified = Verified::default();
        for i in 0..MAX_VERIFIED {
            // Half of them expire at 500.
            let exp = if i % 2 == 0 { 500 } else { 1_000 };
            verified.insert(&format!("t{i}"), &claims(exp), 0, 400, 30);
        }
        assert_eq!(verified.tokens.len(), MAX_VERIFIED);
        verified.insert("one more", &claims(1_000), 0, 900, 30);
        assert_eq!(
            verified.tokens.len(),
            MAX_VERIFIED / 2 + 1,
            "the expired went"
        );
        assert!(
            verified.get("t1", 900, 30).is_some(),
            "the live ones stayed"
        );
        for i in 0..MAX_VERIFIED {
            verified.insert(&format!("u{i}"), &claims(1_000), 0, 900, 30);
        }
        assert!(verified.tokens.len() <= MAX_VERIFIED);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let delay = Duration::from_secs(8);
        for _ in 0..100 {
            let d = jittered(delay);
            assert!(d >= delay / 2 && d <= delay, "{d:?}");
        }
    }
}
