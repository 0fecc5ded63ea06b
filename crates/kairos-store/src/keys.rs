//! API keys: `sk_test_` or `sk_live_` and 32 random alphanumerics (≈190 bits). Only a SHA-256
//! of the whole key is stored; keys are random enough that a fast hash is safe, and it makes
//! the per-request lookup a single indexed read.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

use crate::Mode;

/// A key ready to store: its hash and a short prefix kept for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedKey {
    pub hash: String,
    pub prefix: String,
}

/// A fresh secret key for `mode` and what the store keeps of it.
pub fn generate(mode: Mode) -> (String, HashedKey) {
    let random: String = rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
    let key = format!("sk_{}_{random}", mode.as_str());
    let hashed = HashedKey { hash: hash(&key), prefix: key[..12].to_string() };
    (key, hashed)
}

/// The stored hash of a presented key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The mode a key's prefix claims, if it has a valid prefix.
pub fn mode_of(key: &str) -> Option<Mode> {
    if key.starts_with("sk_test_") {
        Some(Mode::Test)
    } else if key.starts_with("sk_live_") {
        Some(Mode::Live)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hashed() {
        let (a, ha) = generate(Mode::Test);
        let (b, _) = generate(Mode::Test);
        assert!(a.starts_with("sk_test_") && a.len() == 40);
        assert_ne!(a, b);
        assert_eq!(ha.hash, hash(&a));
        assert_eq!(mode_of(&a), Some(Mode::Test));
        assert_eq!(mode_of("sk_prod_x"), None);
    }
}
