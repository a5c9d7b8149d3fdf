//! API keys for machine clients (Kong's `key-auth`): each consumer is a
//! `[[consumers]]` entry of the gateway file, and presents its key in the `apikey`
//! header.
//!
//! - Keys are stored as the hex SHA-256 of the key, so the file (and whoever reads it)
//!   holds nothing that opens the door. A fast hash is enough here, unlike for
//!   passwords: a key is 32 random bytes from the operating system, so even a leaked
//!   hash leaves 2^256 candidates to try, and a slow hash (argon2) would only cost
//!   every request milliseconds of CPU and hand attackers a cheap way to burn it.
//! - The header only, never `?apikey=`: URLs end up in access logs, browser history,
//!   `Referer` headers and upstream logs, and a key there is a key leaked.
//! - The header never goes upstream (the proxy removes [`API_KEY_HEADER`]): services
//!   trust the gateway's decision, they have no use for the secret.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The request header a consumer presents its key in.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("apikey");

/// What every generated key starts with, so a leaked one is recognized (by people and
/// by secret scanners) for what it is.
pub const KEY_PREFIX: &str = "sk_";

/// Longer presented values are refused before hashing; a generated key has 46 bytes.
const MAX_KEY_LEN: usize = 256;

/// One `[[consumers]]` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    /// Unique; it names the consumer in logs, metrics and its rate-limit key.
    pub name: String,
    /// The SHA-256 of the key, as 64 hex digits (`shop-gateway apikey` prints one).
    pub key_sha256: String,
    /// The `[rate_limits]` policy its requests count against, instead of the route's.
    #[serde(default)]
    pub rate_limit: Option<String>,
}

/// A machine client with a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    name: Arc<str>,
    rate_limit: Option<String>,
}

impl Consumer {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy that replaces the route's for this consumer, if any.
    pub fn rate_limit(&self) -> Option<&str> {
        self.rate_limit.as_deref()
    }

    pub(crate) fn shared_name(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }
}

/// The consumers, found by the digest of their key.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], Consumer>,
}

impl ApiKeys {
    /// Checks every entry: a name that is present, unique and fit for a log line, and a
    /// hash that is 64 hex digits and not another consumer's. Errors name the entry.
    pub fn from_specs(specs: &[ConsumerSpec]) -> anyhow::Result<Self> {
        let mut by_digest: HashMap<[u8; 32], Consumer> = HashMap::with_capacity(specs.len());
        let mut names: HashMap<&str, usize> = HashMap::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let place = format!("consumers[{i}] ({:?})", spec.name);
            let name_ok = (1..=64).contains(&spec.name.len())
                && spec
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !name_ok {
                bail!("{place}: `name` must be 1 to 64 letters, digits, `-`, `_` or `.`");
            }
            if let Some(first) = names.insert(&spec.name, i) {
                bail!("{place}: `name` is already used by consumers[{first}]");
            }
            let digest = parse_digest(&spec.key_sha256).with_context(|| {
                format!(
                    "{place}: `key_sha256` must be the key's SHA-256 as 64 hex digits \
                     (`shop-gateway apikey` makes a key and its hash)"
                )
            })?;
            if let Some(other) = by_digest.get(&digest) {
                bail!(
                    "{place}: `key_sha256` is the same as consumer {:?}'s: every consumer needs its own key",
                    other.name()
                );
            }
            if spec.rate_limit.as_deref() == Some("") {
                bail!("{place}: `rate_limit` must name a policy or be left out");
            }
            let consumer = Consumer {
                name: Arc::from(spec.name.as_str()),
                rate_limit: spec.rate_limit.clone(),
            };
            by_digest.insert(digest, consumer);
        }
        Ok(Self { by_digest })
    }

    /// The consumer whose key was presented, if it is one of ours.
    ///
    /// Looking the digest up in a map is not a timing oracle for the key: an attacker
    /// could at most learn how many leading bytes of *a digest* matched, and choosing
    /// inputs to extend that match means inverting SHA-256. No constant-time
    /// comparison is needed, and a lookup costs the same with one consumer or a
    /// thousand.
    pub fn verify(&self, presented: &HeaderValue) -> Option<&Consumer> {
        let key = presented.as_bytes();
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(key).into();
        self.by_digest.get(&digest)
    }

    pub fn consumers(&self) -> impl Iterator<Item = &Consumer> {
        self.by_digest.values()
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// A new key and the SHA-256 hex to put in the gateway file: `sk_` and 32 bytes from
/// the operating system's random source, base64url without padding (46 characters,
/// safe in a header, a shell and a TOML string).
pub fn generate() -> anyhow::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = to_hex(&Sha256::digest(key.as_bytes()));
    Ok((key, hash))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// 64 hex digits (either case) to the 32 bytes they spell.
fn parse_digest(hex: &str) -> anyhow::Result<[u8; 32]> {
    if hex.len() != 64 {
        bail!("it has {} characters", hex.len());
    }
    let mut digest = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
        let high = hex_value(pair[0]);
        let low = hex_value(pair[1]);
        let (Some(high), Some(low)) = (high, low) else {
            bail!(
                "character {} or {} is not a hex digit",
                2 * i + 1,
                2 * i + 2
            );
        };
        digest[i] = high << 4 | low;
    }
    Ok(digest)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, key: &str) -> ConsumerSpec {
        ConsumerSpec {
            name: name.to_owned(),
            key_sha256: to_hex(&Sha256::digest(key.as_bytes())),
            rate_limit: None,
        }
    }

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn a_key_verifies_only_against_its_own_hash() {
        let keys = ApiKeys::from_specs(&[
            spec("partner-feed", "sk_partner"),
            ConsumerSpec {
                rate_limit: Some("partner".to_owned()),
                ..spec("warehouse", "sk_warehouse")
            },
        ])
        .unwrap();
        let partner = keys.verify(&header("sk_partner")).unwrap();
        assert_eq!(partner.name(), "partner-feed");
        assert_eq!(partner.rate_limit(), None);
        let warehouse = keys.verify(&header("sk_warehouse")).unwrap();
        assert_eq!(warehouse.name(), "warehouse");
        assert_eq!(warehouse.rate_limit(), Some("partner"));
    }

    #[test]
    fn a_wrong_empty_or_oversized_key_verifies_as_nobody() {
        let keys = ApiKeys::from_specs(&[spec("partner-feed", "sk_partner")]).unwrap();
        for presented in [
            "sk_partneR",
            "sk_partner ",
            "",
            &"k".repeat(MAX_KEY_LEN + 1),
        ] {
            assert!(keys.verify(&header(presented)).is_none(), "{presented:?}");
        }
        // The hash itself is not a key: the file's contents open nothing.
        let hash = spec("x", "sk_partner").key_sha256;
        assert!(keys.verify(&header(&hash)).is_none());
        assert!(ApiKeys::default().verify(&header("sk_partner")).is_none());
    }

    #[test]
    fn a_hash_in_capitals_is_the_same_hash() {
        let mut upper = spec("partner-feed", "sk_partner");
        upper.key_sha256 = upper.key_sha256.to_uppercase();
        let keys = ApiKeys::from_specs(&[upper]).unwrap();
        assert!(keys.verify(&header("sk_partner")).is_some());
    }

    #[test]
    fn a_generated_key_verifies_against_its_hash_and_keys_differ() {
        let (key, hash) = generate().unwrap();
        assert!(key.starts_with(KEY_PREFIX));
        assert_eq!(key.len(), 46);
        assert_eq!(hash.len(), 64);
        let keys = ApiKeys::from_specs(&[ConsumerSpec {
            name: "generated".to_owned(),
            key_sha256: hash,
            rate_limit: None,
        }])
        .unwrap();
        assert_eq!(keys.verify(&header(&key)).unwrap().name(), "generated");
        let (other, _) = generate().unwrap();
        assert_ne!(key, other);
        assert!(keys.verify(&header(&other)).is_none());
    }

    #[test]
    fn a_bad_consumer_list_is_refused_naming_the_entry() {
        let good = spec("a", "sk_a");
        let cases: Vec<(Vec<ConsumerSpec>, &str)> = vec![
            (
                vec![ConsumerSpec {
                    key_sha256: "abc".to_owned(),
                    ..good.clone()
                }],
                "consumers[0] (\"a\"): `key_sha256` must be",
            ),
            (
                vec![ConsumerSpec {
                    key_sha256: format!("{}zz", &good.key_sha256[..62]),
                    ..good.clone()
                }],
                "consumers[0] (\"a\"): `key_sha256`",
            ),
            (
                vec![good.clone(), spec("a", "sk_other")],
                "consumers[1] (\"a\"): `name` is already used by consumers[0]",
            ),
            (
                vec![
                    good.clone(),
                    ConsumerSpec {
                        name: "b".to_owned(),
                        ..good.clone()
                    },
                ],
                "consumers[1] (\"b\"): `key_sha256` is the same as consumer \"a\"'s",
            ),
            (vec![spec("", "sk_x")], "consumers[0] (\"\"): `name`"),
            (vec![spec("a b", "sk_x")], "consumers[0] (\"a b\"): `name`"),
            (
                vec![ConsumerSpec {
                    rate_limit: Some(String::new()),
                    ..good.clone()
                }],
                "consumers[0] (\"a\"): `rate_limit`",
            ),
        ];
        for (specs, expected) in cases {
            let error = format!("{:#}", ApiKeys::from_specs(&specs).unwrap_err());
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }

    #[test]
    fn the_sha256_hex_is_the_usual_one() {
        // `printf abc | sha256sum`
        assert_eq!(
            to_hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
