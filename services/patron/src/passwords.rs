//! Password hashing with Argon2id (rule P10), off the async threads. Verifying against an
//! unknown account still runs one hash, so timing does not reveal whether it exists (P13).
//!
//! Memory: one Argon2id hash fills 19 MiB. Left to itself (a `spawn_blocking` per hash and
//! the crate allocating its blocks each time), a burst of logins ran a hash on each of
//! dozens of blocking threads at once, and glibc kept every 19 MiB block in the arena of the
//! thread that freed it: the patron role reached 969 MB resident after 30 patrons. Here a
//! semaphore lets at most one hash per core run (more could not run faster anyway), and each
//! running hash borrows one of at most that many block buffers, allocated once and reused
//! through `hash_password_into_with_memory`. The role's hashing memory is thus bounded by
//! cores × 19 MiB, whatever the allocator, and there is no per-hash allocation for it to
//! keep. (An allocator change, such as jemalloc with its decay, would only shorten how long
//! the memory is kept, not bound how much a burst takes.)

use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::Semaphore;

pub use crate::domain::password::MAX_PASSWORD_BYTES;

/// True when `password` may be hashed ([`MAX_PASSWORD_BYTES`]).
pub fn acceptable_length(password: &str) -> bool {
    !crate::domain::password::too_long(password)
}

/// Argon2id with 19 MiB, 2 passes, 1 lane: the OWASP minimum for Argon2id, chosen so that a
/// login costs tens of milliseconds on one core of a small server.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// The hashing workers: permits for as many hashes at once as there are cores, and the
/// block buffers they borrow.
struct Workers {
    permits: Arc<Semaphore>,
    buffers: Mutex<Vec<Vec<Block>>>,
}

impl Workers {
    fn get() -> &'static Workers {
        static WORKERS: OnceLock<Workers> = OnceLock::new();
        WORKERS.get_or_init(|| {
            let n = concurrent_hashes();
            Workers {
                permits: Arc::new(Semaphore::new(n)),
                buffers: Mutex::new(Vec::with_capacity(n)),
            }
        })
    }

    /// A buffer for one hash with `blocks` blocks at least: a kept one, or a new one.
    fn take(&self, blocks: usize) -> Vec<Block> {
        let kept = self.buffers.lock().ok().and_then(|mut b| b.pop());
        match kept {
            Some(buf) if buf.len() >= blocks => buf,
            _ => vec![Block::new(); blocks],
        }
    }

    /// Keeps a buffer of the standard size for the next hash (one of another size, made
    /// for an old hash's parameters, is freed).
    fn put(&self, buf: Vec<Block>) {
        if buf.len() == params().block_count()
            && let Ok(mut kept) = self.buffers.lock()
        {
            kept.push(buf);
        }
    }
}

/// How many hashes run at once: one per core this process may use.
pub fn concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `job` on a blocking thread with a block buffer, once a permit is free. The permit
/// travels with the job, so a caller that gives up (a dropped request) does not let another
/// hash start before this one ends.
async fn with_memory<T: Send + 'static>(
    blocks: usize,
    job: impl FnOnce(&mut [Block]) -> T + Send + 'static,
) -> anyhow::Result<T> {
    let workers = Workers::get();
    let permit = workers.permits.clone().acquire_owned().await?;
    Ok(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut buf = workers.take(blocks);
        let out = job(&mut buf);
        workers.put(buf);
        out
    })
    .await?)
}

/// The PHC string of `password` hashed with a fresh salt.
fn hash_with(password: &[u8], memory: &mut [Block]) -> anyhow::Result<String> {
    let params = params();
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hasher()
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)
            .map_err(|e| anyhow::anyhow!("encoding parameters: {e}"))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("encoding a hash: {e}"))?),
    };
    Ok(phc.to_string())
}

/// True when `password` hashes to `stored` (with the stored parameters), compared in
/// constant time.
fn verify_with(password: &[u8], stored: &PasswordHash, memory: &mut [Block]) -> bool {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = Version::try_from(stored.version.unwrap_or(Version::V0x13.into())) else {
        return false;
    };
    let Ok(params) = Params::try_from(stored) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory)
        .is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// The Argon2id PHC string of `password`. Callers refuse passwords over
/// [`MAX_PASSWORD_BYTES`] first; this refuses them too, as an error.
pub async fn hash(password: String) -> anyhow::Result<String> {
    anyhow::ensure!(acceptable_length(&password), "password too long to hash");
    with_memory(params().block_count(), move |memory| {
        hash_with(password.as_bytes(), memory)
    })
    .await?
}

fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut memory = vec![Block::new(); params().block_count()];
        hash_with(b"kitsuki-timing-equaliser", &mut memory)
            .ok()
            .and_then(|s| PasswordHash::new(&s).ok())
            .unwrap_or_else(|| PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1").unwrap())
    })
}

/// True when `password` matches `stored`; with no stored hash, spends the same time and
/// answers false. A password over [`MAX_PASSWORD_BYTES`] is never hashed: false.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    if !acceptable_length(&password) {
        return false;
    }
    let known = stored.as_deref().and_then(|s| PasswordHash::new(s).ok());
    let blocks = known
        .as_ref()
        .and_then(|h| Params::try_from(h).ok())
        .map_or(params().block_count(), |p| p.block_count());
    with_memory(blocks, move |memory| {
        let is_known = known.is_some();
        let target = known.unwrap_or_else(|| dummy_hash().clone());
        let ok = verify_with(password.as_bytes(), &target, memory);
        // Without an account the answer is no, whatever was typed.
        ok && is_known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn argon2id_hash_verifies_and_refuses_wrong_password() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse".into(), Some(h.clone())).await);
        assert!(!verify("kitsuki-timing-equaliser".into(), None).await);
        // The crate's own verifier agrees (the stored strings stay standard PHC).
        assert!(
            hasher()
                .verify_password(b"correct horse", h.as_str())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn hashes_made_by_the_crate_and_with_other_parameters_verify() {
        use argon2::PasswordHasher;
        let standard = hasher().hash_password(b"old hash").unwrap().to_string();
        assert!(verify("old hash".into(), Some(standard)).await);
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let other = small.hash_password(b"cheaper").unwrap().to_string();
        assert!(verify("cheaper".into(), Some(other.clone())).await);
        assert!(!verify("dearer".into(), Some(other)).await);
        assert!(!verify("x".into(), Some("not a phc string".into())).await);
    }

    #[tokio::test]
    async fn a_password_over_the_limit_is_never_hashed() {
        let at_limit = "a".repeat(MAX_PASSWORD_BYTES);
        let h = hash(at_limit.clone()).await.unwrap();
        assert!(verify(at_limit, Some(h.clone())).await);
        let over = "a".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(hash(over.clone()).await.is_err());
        assert!(!verify(over, Some(h)).await);
    }

    #[tokio::test]
    async fn buffers_never_outnumber_the_permits() {
        let n = concurrent_hashes();
        let h = hash("parallel".into()).await.unwrap();
        let all = (0..4 * n).map(|_| tokio::spawn(verify("parallel".into(), Some(h.clone()))));
        for ok in futures::future::join_all(all).await {
            assert!(ok.unwrap());
        }
        let kept = Workers::get().buffers.lock().unwrap().len();
        assert!((1..=n).contains(&kept), "{kept} buffers for {n} permits");
    }

    /// Prints what one hash and one verification cost here (the parameters are in the PHC
    /// string). A measurement, not a check: run it in release mode,
    /// `cargo test --release -p kitsuki-patron --lib -- --ignored --nocapture argon2id_cost`.
    #[tokio::test]
    #[ignore = "a measurement; run in release mode with --nocapture"]
    async fn argon2id_cost_on_this_machine() {
        let _ = dummy_hash();
        let t = std::time::Instant::now();
        let h = hash("correct horse battery".into()).await.unwrap();
        let hashing = t.elapsed();
        let mut times = Vec::new();
        for _ in 0..7 {
            let t = std::time::Instant::now();
            assert!(verify("correct horse battery".into(), Some(h.clone())).await);
            times.push(t.elapsed());
        }
        let t = std::time::Instant::now();
        assert!(!verify("correct horse battery".into(), None).await);
        let unknown = t.elapsed();
        times.sort();
        println!(
            "argon2id {}: hash {hashing:?}, verify median {:?} (min {:?}, max {:?}), unknown account {unknown:?}",
            h.split('$').nth(3).unwrap_or_default(),
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
        );
    }
}
