//! The token signing keys: the current Ed25519 key signs, retired keys stay in the
//! published JWKS until the tokens they signed have expired. Key ids are RFC 7638
//! thumbprints, so the same key always has the same `kid` on every replica.

use anyhow::Context as _;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use secrecy::{ExposeSecret as _, SecretString};
use shop_auth::{Claims, Role, Verifier};
use uuid::Uuid;

use crate::config::JwtSettings;

pub struct SigningKeys {
    kid: String,
    key: EncodingKey,
    jwks: JwkSet,
    issuer: String,
    audience: String,
    access_ttl_secs: i64,
}

/// A freshly issued access token.
pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
}

impl SigningKeys {
    /// Loads the keys the settings name. With none configured, a local run gets a
    /// key generated for this process (tokens then die with it); anywhere else that
    /// is an error.
    pub fn load(settings: &JwtSettings) -> anyhow::Result<Self> {
        let current = match (&settings.signing_key_file, &settings.signing_key_pem) {
            (Some(path), _) => SecretString::from(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the signing key {}", path.display()))?,
            ),
            (None, Some(pem)) => pem.clone(),
            (None, None) if shop_http::config::is_local() => {
                tracing::warn!("no signing key configured: generated one for this process only");
                generate_pem()?
            }
            (None, None) => anyhow::bail!(
                "no signing key: set SHOP_JWT__SIGNING_KEY_FILE (or SHOP_JWT__SIGNING_KEY_PEM)"
            ),
        };
        let previous = settings
            .previous_key_files
            .iter()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the retired key {}", path.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Self::from_pems(&current, &previous, settings)
    }

    pub fn from_pems(
        current: &SecretString,
        previous: &[String],
        settings: &JwtSettings,
    ) -> anyhow::Result<Self> {
        let key = EncodingKey::from_ed_pem(current.expose_secret().as_bytes())
            .context("the signing key is not an Ed25519 PKCS#8 PEM")?;
        let current_jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA)?;
        let (kid, current_jwk) = with_kid(current_jwk)?;
        let mut keys = vec![current_jwk];
        for pem in previous {
            let jwk = if pem.contains("PRIVATE KEY") {
                Jwk::from_encoding_key(
                    &EncodingKey::from_ed_pem(pem.as_bytes())?,
                    Algorithm::EdDSA,
                )?
            } else {
                Jwk::from_decoding_key(
                    &DecodingKey::from_ed_pem(pem.as_bytes())?,
                    Some(Algorithm::EdDSA),
                )?
            };
            let (old_kid, jwk) = with_kid(jwk)?;
            if old_kid != kid
                && keys
                    .iter()
                    .all(|k| k.common.key_id.as_deref() != Some(&old_kid))
            {
                keys.push(jwk);
            }
        }
        tracing::info!(%kid, published = keys.len(), "signing keys loaded");
        Ok(Self {
            kid,
            key,
            jwks: JwkSet { keys },
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl_secs: settings.access_ttl_secs,
        })
    }

    /// Signs an access token for a user.
    pub fn issue(&self, user_id: Uuid, roles: Vec<Role>) -> anyhow::Result<AccessToken> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id,
            roles,
            iat: now,
            exp: now + self.access_ttl_secs,
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key)?;
        Ok(AccessToken {
            token,
            expires_in: self.access_ttl_secs,
        })
    }

    /// The public keys, current first, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn current_kid(&self) -> &str {
        &self.kid
    }

    /// A verifier for this service's own tokens (no need to fetch its own JWKS).
    pub fn verifier(&self) -> Verifier {
        Verifier::with_keys(&self.jwks, &self.issuer, &self.audience)
    }
}

fn with_kid(mut jwk: Jwk) -> anyhow::Result<(String, Jwk)> {
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok((kid, jwk))
}

/// A new Ed25519 signing key as PKCS#8 PEM (what `shop-user keygen` prints); the one
/// generator the launcher uses too.
pub fn generate_pem() -> anyhow::Result<SecretString> {
    Ok(shop_auth::signing_key::generate_pem()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[tokio::test]
    async fn tokens_verify_against_the_published_keys() {
        let settings = Settings::default().jwt;
        let keys = SigningKeys::from_pems(&generate_pem().unwrap(), &[], &settings).unwrap();
        let user = Uuid::now_v7();
        let token = keys.issue(user, vec![Role::Customer]).unwrap();
        let claims = keys.verifier().verify(&token.token).await.unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(
            keys.jwks().keys[0].common.key_id.as_deref(),
            Some(keys.current_kid())
        );
    }

    #[tokio::test]
    async fn a_retired_key_is_published_but_does_not_sign() {
        let settings = Settings::default().jwt;
        let old_pem = generate_pem().unwrap();
        let old = SigningKeys::from_pems(&old_pem, &[], &settings).unwrap();
        let old_token = old.issue(Uuid::now_v7(), vec![Role::Admin]).unwrap();

        let rotated = SigningKeys::from_pems(
            &generate_pem().unwrap(),
            &[old_pem.expose_secret().to_owned()],
            &settings,
        )
        .unwrap();
        assert_eq!(rotated.jwks().keys.len(), 2);
        assert_ne!(rotated.current_kid(), old.current_kid());
        assert!(rotated.verifier().verify(&old_token.token).await.is_ok());
        let new_token = rotated.issue(Uuid::now_v7(), vec![Role::Customer]).unwrap();
        let header = jsonwebtoken::decode_header(&new_token.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(rotated.current_kid()));
    }
}
