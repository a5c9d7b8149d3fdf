//! Password hashing with argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing is deliberately slow and memory-hungry, so it runs on the blocking pool
//! behind a semaphore: a burst of logins queues instead of starving the async
//! workers or exhausting memory.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the account does not
    /// exist, so a login costs the same either way and timing reveals nothing.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Passwords {
    /// `max_concurrent` hashes at once; 0 means one per core.
    pub fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        let permits = if max_concurrent == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            max_concurrent
        };
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let dummy = argon2()
            .hash_password(&random)
            .map_err(|e| anyhow::anyhow!("hashing the dummy password: {e}"))?
            .to_string();
        Ok(Self {
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash: dummy.into(),
        })
    }

    /// The PHC string of a new password.
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || {
            argon2()
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
        })
        .await?
    }

    /// Whether `password` matches `hash`; with no hash (unknown account) it does the
    /// same work against the dummy and answers false.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = tokio::task::spawn_blocking(move || {
            argon2()
                .verify_password(password.expose_secret().as_bytes(), hash.as_str())
                .is_ok()
        })
        .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let passwords = Passwords::new(1).unwrap();
        let hash = passwords
            .hash(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            passwords
                .verify(
                    SecretString::from("correct horse battery"),
                    Some(hash.clone())
                )
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(SecretString::from("correct horse battery!"), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let passwords = Passwords::new(1).unwrap();
        assert!(
            !passwords
                .verify(SecretString::from("anything at all"), None)
                .await
                .unwrap()
        );
    }
}
