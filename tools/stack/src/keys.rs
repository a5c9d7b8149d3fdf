//! The user service's token signing key, made once per data folder.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;

/// Writes a new Ed25519 key (`shop_auth::signing_key::generate_pem`, the PEM form the
/// user service reads) with mode 0600, unless `path` exists. Returns whether it made one.
pub fn ensure_signing_key(path: &Path) -> anyhow::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pem = shop_auth::signing_key::generate_pem()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(pem.expose_secret().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_key_is_made_once_readable_only_by_its_owner_and_then_kept() {
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
        assert!(first.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
