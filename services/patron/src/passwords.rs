//! Password hashing with Argon2id (rule P10), off the async threads. Verifying against an
//! unknown account still runs one hash, so timing does not reveal whether it exists (P13).

use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// Argon2id with 19 MiB, 2 passes, 1 lane: the OWASP minimum for Argon2id, chosen so that a
/// login costs tens of milliseconds on one core of a small server.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        hasher()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hasher()
            .hash_password(b"kitsuki-timing-equaliser")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// True when `password` matches `stored`; with no stored hash, spends the same time and
/// answers false.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let target = stored.unwrap_or_else(|| dummy_hash().to_string());
        let ok = hasher()
            .verify_password(password.as_bytes(), target.as_str())
            .is_ok();
        // Without an account the answer is no, whatever was typed.
        ok && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_hash_verifies_and_refuses_wrong_password() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse".into(), Some(h)).await);
        assert!(!verify("kitsuki-timing-equaliser".into(), None).await);
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
