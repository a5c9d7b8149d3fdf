//! An issuer of access tokens for tests and benchmarks: a fresh Ed25519 key whose key
//! set a service's verifier trusts, so a test can act as a customer or an admin
//! without running the user service.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret as _;
use shop_auth::{Claims, Role, Verifier};
use uuid::Uuid;

/// The `iss` of every token a [`TestIssuer`] signs.
pub const TEST_ISSUER: &str = "http://issuer.test";

pub struct TestIssuer {
    key: EncodingKey,
    kid: String,
    jwks: JwkSet,
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestIssuer {
    /// A fresh key with a unique key id.
    pub fn new() -> Self {
        let pem = shop_auth::signing_key::generate_pem().expect("an Ed25519 key");
        let key = EncodingKey::from_ed_pem(pem.expose_secret().as_bytes()).expect("a PEM key");
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).expect("a JWK");
        let kid = format!("test-{}", Uuid::new_v4());
        jwk.common.key_id = Some(kid.clone());
        Self {
            key,
            kid,
            jwks: JwkSet { keys: vec![jwk] },
        }
    }

    /// A verifier that trusts this issuer's key (and the shop's audience).
    pub fn verifier(&self) -> Verifier {
        Verifier::with_keys(&self.jwks, TEST_ISSUER, shop_auth::AUDIENCE)
    }

    /// A token with `roles`, expiring `expires_in` seconds from now (negative: expired).
    pub fn token(&self, roles: &[Role], expires_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: TEST_ISSUER.to_owned(),
            aud: shop_auth::AUDIENCE.to_owned(),
            sub: Uuid::now_v7(),
            roles: roles.to_vec(),
            iat: now - 10,
            exp: now + expires_in,
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("a signed token")
    }

    /// A customer's token for ten minutes.
    pub fn customer(&self) -> String {
        self.token(&[Role::Customer], 600)
    }

    /// An admin's token for ten minutes.
    pub fn admin(&self) -> String {
        self.token(&[Role::Customer, Role::Admin], 600)
    }
}
