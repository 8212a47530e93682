//! Secrets handed out once: session and link tokens (256 random bits, only their SHA-256
//! stored, so a copy of the database holds no usable session or link) and readable
//! temporary passwords (rule P3).

use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Letters and digits that cannot be mistaken for one another when read off a printed slip
/// or typed on a phone: no 0/O/o, 1/l/I/i, nor 2/Z/z and 5/S/s.
pub const READABLE_ALPHABET: &[u8] = b"abcdefghjkmnpqrtuvwxyABCDEFGHJKLMNPQRTUVWXY346789";

/// Rule P3: length of a temporary password (about 56 bits with [`READABLE_ALPHABET`]).
pub const TEMPORARY_PASSWORD_LEN: usize = 10;

/// A random password of `len` characters of [`READABLE_ALPHABET`], each drawn uniformly.
pub fn new_password(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| READABLE_ALPHABET[rng.random_range(0..READABLE_ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), a);
        assert_eq!(new_password(16).len(), 16);
    }

    #[test]
    fn p3_temporary_passwords_are_readable_and_differ() {
        let a = new_password(TEMPORARY_PASSWORD_LEN);
        assert_eq!(a.chars().count(), 10);
        assert!(a.bytes().all(|b| READABLE_ALPHABET.contains(&b)), "{a}");
        for confusable in "0Oo1lIi2Zz5Ss".chars() {
            assert!(
                !READABLE_ALPHABET.contains(&(confusable as u8)),
                "{confusable}"
            );
        }
        assert_ne!(a, new_password(TEMPORARY_PASSWORD_LEN));
    }
}
