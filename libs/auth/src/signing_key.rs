//! New Ed25519 token signing keys, in the one PEM form the shop reads: what `make up`
//! stores under `.data/keys/` and what `shop-user keygen` prints.

use base64::Engine as _;
use secrecy::SecretString;
use secrecy::zeroize::Zeroizing;

/// RFC 8410's PKCS#8 v1 wrapping of an Ed25519 private key, everything before the 32
/// key bytes: SEQUENCE (46 bytes) { INTEGER 0, SEQUENCE { OID 1.3.101.112 },
/// OCTET STRING { OCTET STRING (32 bytes) } }. It never varies, so it is written out
/// here instead of pulling in a DER encoder.
const PKCS8_V1_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The operating system would not hand out random bytes for a key.
#[derive(Debug, thiserror::Error)]
#[error("no randomness from the operating system for a signing key")]
pub struct KeygenError(#[source] getrandom::Error);

/// A new Ed25519 signing key as a PKCS#8 v1 PEM (`-----BEGIN PRIVATE KEY-----`).
///
/// An Ed25519 private key is just 32 random bytes. The v1 form (what `openssl genpkey
/// -algorithm ed25519` writes) holds the private key only, and it is the form
/// jsonwebtoken reads: `Jwk::from_encoding_key` wants exactly these 48 bytes of DER,
/// so the v2 form with the public key appended (ed25519-dalek's `to_pkcs8_pem`) would
/// not do.
pub fn generate_pem() -> Result<SecretString, KeygenError> {
    // Every copy of the key bytes is wiped when dropped; the PEM itself is a SecretString.
    let mut der = Zeroizing::new([0u8; 48]);
    let (prefix, seed) = der.split_at_mut(PKCS8_V1_ED25519_PREFIX.len());
    prefix.copy_from_slice(&PKCS8_V1_ED25519_PREFIX);
    getrandom::fill(seed).map_err(KeygenError)?;
    let body = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der.as_slice()));
    Ok(SecretString::from(format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        body.as_str()
    )))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
    use secrecy::ExposeSecret as _;

    use super::*;

    /// The public half, worked out independently of jsonwebtoken.
    fn public_key_of(pem: &SecretString) -> DecodingKey {
        let key = SigningKey::from_pkcs8_pem(pem.expose_secret()).expect("a PKCS#8 Ed25519 key");
        DecodingKey::from_ed_der(key.verifying_key().as_bytes())
    }

    fn sign(pem: &SecretString) -> String {
        let key = EncodingKey::from_ed_pem(pem.expose_secret().as_bytes())
            .expect("jsonwebtoken reads the PEM");
        let claims = serde_json::json!({ "sub": "ada", "aud": "shop", "exp": 4_102_444_800u64 });
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
    }

    fn verifies(token: &str, public_key: &DecodingKey) -> bool {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["shop"]);
        jsonwebtoken::decode::<serde_json::Value>(token, public_key, &validation).is_ok()
    }

    #[test]
    fn a_generated_key_signs_tokens_that_its_public_key_verifies() {
        let pem = generate_pem().unwrap();

        let token = sign(&pem);

        assert!(verifies(&token, &public_key_of(&pem)));
        let stranger = generate_pem().unwrap();
        assert!(!verifies(&token, &public_key_of(&stranger)));
    }

    #[test]
    fn the_pem_is_the_private_key_only_form_and_new_every_time() {
        let (a, b) = (generate_pem().unwrap(), generate_pem().unwrap());

        let lines: Vec<&str> = a.expose_secret().lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN PRIVATE KEY-----"));
        assert_eq!(lines.last(), Some(&"-----END PRIVATE KEY-----"));
        let der = base64::engine::general_purpose::STANDARD
            .decode(lines[1..lines.len() - 1].concat())
            .unwrap();
        assert_eq!(der.len(), 48, "PKCS#8 v1: no public key appended");
        assert_eq!(der[..16], PKCS8_V1_ED25519_PREFIX);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
