//! Password hashing with argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing is deliberately slow and memory-hungry, so it runs on the blocking pool
//! behind a semaphore (one hash per core by default): a burst of logins queues instead
//! of starving the async workers. The permit is owned by the blocking task, not by the
//! request: a request cancelled mid-hash (the client went away) drops its future, but
//! the hash runs to the end on its thread, and only then may the next one start. Each permit owns one reusable 19 MiB work area; we
//! measured that allocating it per hash let the allocator keep a copy per blocking
//! thread (the process grew to ~490 MiB under a login load test), while reusing them
//! bounds hashing memory at `permits x 19 MiB`.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), so a future
//! change of parameters still verifies old hashes.

use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;

const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Work areas, one per permit, allocated on first use and then reused.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A real hash of a random password, verified against when the account does not
    /// exist, so a login costs the same either way and timing reveals nothing.
    dummy_hash: Arc<str>,
    #[cfg(test)]
    running: Arc<tests::Running>,
}

impl Passwords {
    /// `max_concurrent` hashes at once; 0 means one per core.
    pub async fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        let permits = if max_concurrent == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            max_concurrent
        };
        let mut passwords = Self {
            permits: Arc::new(Semaphore::new(permits)),
            memory: Arc::new(Mutex::new(Vec::new())),
            dummy_hash: Arc::from(""),
            #[cfg(test)]
            running: Arc::default(),
        };
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let dummy = passwords
            .hash(SecretString::from(B64.encode(random)))
            .await?;
        passwords.dummy_hash = dummy.into();
        Ok(passwords)
    }

    /// The PHC string of a new password.
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let params = Params::new(M_COST, T_COST, P_COST, Some(HASH_LEN))
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let hash = self
            .compute(password, salt.to_vec(), params.clone())
            .await?;
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            B64.encode(salt),
            B64.encode(hash)
        ))
    }

    /// Whether `password` matches `hash`; with no hash (unknown account) it does the
    /// same work against the dummy and answers false.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let Some(stored) = Phc::parse(&hash) else {
            anyhow::bail!("a stored password hash is not an argon2id PHC string");
        };
        let computed = self.compute(password, stored.salt, stored.params).await?;
        Ok(known && constant_time_eq(&computed, &stored.hash))
    }

    async fn compute(
        &self,
        password: SecretString,
        salt: Vec<u8>,
        params: Params,
    ) -> anyhow::Result<Vec<u8>> {
        // Owned, and moved into the blocking task: it is released when the hash is
        // done, not when the request is (see the module doc).
        let permit = Arc::clone(&self.permits).acquire_owned().await?;
        let pool = Arc::clone(&self.memory);
        #[cfg(test)]
        let running = Arc::clone(&self.running);
        tokio::task::spawn_blocking(move || {
            #[cfg(test)]
            let running = running.enter();
            let mut memory = pool
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .pop()
                .unwrap_or_default();
            let blocks = params.block_count();
            if memory.len() != blocks {
                memory = vec![Block::default(); blocks];
            }
            let mut out = vec![0u8; params.output_len().unwrap_or(HASH_LEN)];
            let result = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into_with_memory(
                    password.expose_secret().as_bytes(),
                    &salt,
                    &mut out,
                    &mut memory,
                )
                .map(|()| out)
                .map_err(|e| anyhow::anyhow!("argon2: {e}"));
            // The work area goes back before the permit does, so there are never more
            // areas than permits.
            pool.lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .push(memory);
            #[cfg(test)]
            drop(running);
            drop(permit);
            result
        })
        .await?
    }
}

/// The parts of an argon2id PHC string.
struct Phc {
    params: Params,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Phc {
    fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('$');
        let (empty, alg, version, params, salt, hash) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if !empty.is_empty() || alg != "argon2id" || version != "v=19" || parts.next().is_some() {
            return None;
        }
        let (mut m, mut t, mut p) = (None, None, None);
        for pair in params.split(',') {
            let (key, value) = pair.split_once('=')?;
            let value: u32 = value.parse().ok()?;
            match key {
                "m" => m = Some(value),
                "t" => t = Some(value),
                "p" => p = Some(value),
                _ => return None,
            }
        }
        let hash = B64.decode(hash).ok()?;
        let params = Params::new(m?, t?, p?, Some(hash.len())).ok()?;
        Some(Self {
            params,
            salt: B64.decode(salt).ok()?,
            hash,
        })
    }
}

/// Compares without an early exit, so the time taken says nothing about where the
/// first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    /// How many hashes run right now, and the most that ever ran at once.
    #[derive(Debug, Default)]
    pub(super) struct Running {
        now: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Running {
        pub(super) fn enter(self: &Arc<Self>) -> RunningGuard {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            RunningGuard(Arc::clone(self))
        }
    }

    pub(super) struct RunningGuard(Arc<Running>);

    impl Drop for RunningGuard {
        fn drop(&mut self) {
            self.0.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn cancelled_hashes_keep_their_permits_until_they_finish() {
        let passwords = Passwords::new(2).await.unwrap();
        // A burst of logins whose clients give up while their hashes run.
        let cancelled: Vec<_> = (0..6)
            .map(|i| {
                let passwords = passwords.clone();
                tokio::spawn(
                    async move { passwords.hash(SecretString::from(format!("pw-{i}"))).await },
                )
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while passwords.running.now.load(Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline, "no hash started within 10 s");
            tokio::task::yield_now().await;
        }
        for task in &cancelled {
            task.abort();
        }
        for task in cancelled {
            // Cancelled (or, rarely, finished just before): either way the request is gone.
            let _ = task.await;
        }

        // New requests arrive while the cancelled hashes still run on their threads.
        let next: Vec<_> = (0..4)
            .map(|i| {
                let passwords = passwords.clone();
                tokio::spawn(async move {
                    passwords
                        .hash(SecretString::from(format!("next-{i}")))
                        .await
                })
            })
            .collect();
        for task in next {
            task.await.unwrap().unwrap();
        }

        assert_eq!(
            passwords.running.peak.load(Ordering::SeqCst),
            2,
            "never more hashes at once than permits"
        );
        assert!(
            passwords.memory.lock().unwrap().len() <= 2,
            "never more work areas than permits"
        );
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let passwords = Passwords::new(1).await.unwrap();
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
    async fn hashes_are_standard_phc_strings() {
        // Interoperable: the reference implementation verifies ours...
        let passwords = Passwords::new(1).await.unwrap();
        let ours = passwords
            .hash(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        let argon2 = Argon2::default();
        assert!(
            argon2
                .verify_password(b"correct horse battery", ours.as_str())
                .is_ok()
        );
        // ...and we verify a hash the reference made with other parameters.
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        );
        let theirs = reference.hash_password(b"password").unwrap().to_string();
        assert!(
            theirs.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
            "{theirs}"
        );
        assert!(
            passwords
                .verify(SecretString::from("password"), Some(theirs.clone()))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(SecretString::from("passwort"), Some(theirs))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let passwords = Passwords::new(1).await.unwrap();
        assert!(
            !passwords
                .verify(SecretString::from("anything at all"), None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn malformed_hashes_are_not_parsed() {
        for bad in [
            "",
            "$argon2i$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA",
            "$argon2id$v=19$m=x,t=1,p=1$c2FsdA$aGFzaA",
            "plain",
        ] {
            assert!(Phc::parse(bad).is_none(), "{bad}");
        }
    }
}
