//! The user service's token signing key, made once per data folder.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::pkcs8::KeypairBytes;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;

/// Writes a new Ed25519 key as PKCS#8 PEM (mode 0600) unless `path` exists.
/// Returns whether it made one.
///
/// The PEM holds the private key only (PKCS#8 v1, what `openssl genpkey -algorithm
/// ed25519` writes): jsonwebtoken reads no other form (`Jwk::from_encoding_key` wants
/// exactly 48 bytes of DER), and ed25519-dalek's own `to_pkcs8_pem` adds the public key.
pub fn ensure_signing_key(path: &Path) -> anyhow::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let key = SigningKey::from_bytes(&secret);
    secret.fill(0);
    let pem = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .context("encoding the signing key")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;

    #[test]
    fn the_key_is_made_once_and_reads_back_as_pkcs8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("jwt-signing.pem");

        assert!(ensure_signing_key(&path).unwrap());
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(!ensure_signing_key(&path).unwrap());

        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            first,
            "kept, not replaced"
        );
        assert!(first.starts_with("-----BEGIN PRIVATE KEY-----"));
        SigningKey::from_pkcs8_pem(&first).unwrap();
        let parsed = KeypairBytes::from_pkcs8_pem(&first).unwrap();
        assert!(
            parsed.public_key.is_none(),
            "the v1 form, the one jsonwebtoken reads"
        );
    }
}
