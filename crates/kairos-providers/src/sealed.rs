//! Secrets at rest: provider tokens and CalDAV passwords are sealed with XChaCha20-Poly1305
//! under `KAIROS_SECRET_KEY`, and OAuth `state` values are signed with a key derived from it.
//!
//! `KAIROS_SECRET_KEY` is a comma-separated list: the first key seals, every key opens. To
//! rotate, put a new key first and keep the old one after it until every sealed value has been
//! rewritten (each token refresh rewrites its row; `Keyring::needs_reseal` tells).
//!
//! A sealed value reads `k1.<key id>.<base64url(nonce ‖ ciphertext)>`. The associated data
//! binds it to its place (`purpose`, e.g. the table and column, and the row id) and to the key
//! id, so a value copied to another row or column does not open.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::Mac;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The shortest key accepted, in bytes of text: keys are meant to be random (`openssl rand
/// -base64 32`), and a short one is a typo or a placeholder.
pub const MIN_KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("KAIROS_SECRET_KEY is empty")]
    NoKey,
    #[error("a key in KAIROS_SECRET_KEY is shorter than {MIN_KEY_LEN} characters; use e.g. `openssl rand -base64 32`")]
    ShortKey,
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value was sealed with key {0}, which is not in KAIROS_SECRET_KEY")]
    UnknownKey(String),
    #[error("the sealed value does not open (wrong key, or moved from another row)")]
    Tampered,
}

struct Key {
    id: String,
    aead: XChaCha20Poly1305,
    signing: [u8; 32],
}

/// The server's keys.
pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

fn derive(label: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0]);
    h.update(secret.as_bytes());
    h.finalize().into()
}

impl Keyring {
    /// Reads `KAIROS_SECRET_KEY`'s value.
    pub fn parse(value: &str) -> Result<Self, SealError> {
        let mut keys = Vec::new();
        for secret in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if secret.len() < MIN_KEY_LEN {
                return Err(SealError::ShortKey);
            }
            // The secret is high-entropy text: one SHA-256 per purpose is a sound derivation
            // (no stretching needed; this is not a password).
            let sealing = derive("kairos/seal/v1", secret);
            let id = hex8(&derive("kairos/key-id/v1", secret));
            keys.push(Key {
                id,
                aead: XChaCha20Poly1305::new(&sealing.into()),
                signing: derive("kairos/sign/v1", secret),
            });
        }
        if keys.is_empty() {
            return Err(SealError::NoKey);
        }
        Ok(Self { keys })
    }

    /// A random key, for a development default.
    pub fn generate_secret() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        B64.encode(bytes)
    }

    /// The id of the key that seals (a hash, safe to log).
    pub fn current_key_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    fn aad(purpose: &str, row: &str, key_id: &str) -> Vec<u8> {
        format!("{purpose}\u{1f}{row}\u{1f}{key_id}").into_bytes()
    }

    /// Seals `plain` for the row `row` of `purpose` (e.g. `calendar_connections.secret`).
    pub fn seal(&self, purpose: &str, row: &str, plain: &[u8]) -> String {
        let Some(key) = self.keys.first() else { return String::new() };
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let aad = Self::aad(purpose, row, &key.id);
        // Encryption with a valid key and nonce cannot fail (the only error is a buffer
        // overflow past 256 GiB).
        let sealed =
            key.aead.encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: &aad }).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("k1.{}.{}", key.id, B64.encode(out))
    }

    /// Opens a sealed value of the row `row` of `purpose`.
    pub fn open(&self, purpose: &str, row: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("k1"), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        let key = self.keys.iter().find(|k| k.id == key_id).ok_or_else(|| SealError::UnknownKey(key_id.to_string()))?;
        let bytes = B64.decode(body).map_err(|_| SealError::Malformed)?;
        if bytes.len() < 24 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let aad = Self::aad(purpose, row, key_id);
        key.aead
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| SealError::Tampered)
    }

    /// Whether a sealed value should be rewritten under the current key.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        sealed.split('.').nth(1) != Some(self.current_key_id())
    }

    /// `message` signed with the current key: `base64url(HMAC-SHA256)`.
    pub fn sign(&self, message: &str) -> String {
        self.keys.first().map(|k| B64.encode(mac(&k.signing, message))).unwrap_or_default()
    }

    /// Whether `signature` is `message` signed by any of the keys (constant time per key).
    pub fn verify(&self, message: &str, signature: &str) -> bool {
        let Ok(given) = B64.decode(signature) else { return false };
        self.keys.iter().any(|k| {
            let expected = mac(&k.signing, message);
            subtle::ConstantTimeEq::ct_eq(expected.as_slice(), given.as_slice()).into()
        })
    }
}

fn mac(key: &[u8; 32], message: &str) -> [u8; 32] {
    let mut m = <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(message.as_bytes());
    m.finalize().into_bytes().into()
}

fn hex8(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn seals_and_opens_in_place_only() {
        let ring = Keyring::parse(A).unwrap();
        let sealed = ring.seal("conn.secret", "conn_1", b"refresh-token");
        assert!(sealed.starts_with("k1."));
        assert!(!sealed.contains("refresh-token"));
        assert_eq!(ring.open("conn.secret", "conn_1", &sealed).unwrap(), b"refresh-token");
        // Another row, another column: refused.
        assert_eq!(ring.open("conn.secret", "conn_2", &sealed), Err(SealError::Tampered));
        assert_eq!(ring.open("other.secret", "conn_1", &sealed), Err(SealError::Tampered));
        // Two seals of one value differ (random nonces).
        assert_ne!(sealed, ring.seal("conn.secret", "conn_1", b"refresh-token"));
        // A flipped bit: refused.
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(ring.open("conn.secret", "conn_1", &flipped).is_err());
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_new_key() {
        let old = Keyring::parse(A).unwrap();
        let sealed = old.seal("p", "r", b"x");
        let rotated = Keyring::parse(&format!("{B}, {A}")).unwrap();
        assert_eq!(rotated.open("p", "r", &sealed).unwrap(), b"x");
        assert!(rotated.needs_reseal(&sealed));
        let resealed = rotated.seal("p", "r", b"x");
        assert!(!rotated.needs_reseal(&resealed));
        // Once the old key is dropped, its values say which key they need.
        let only_new = Keyring::parse(B).unwrap();
        assert!(matches!(only_new.open("p", "r", &sealed), Err(SealError::UnknownKey(_))));
        assert_eq!(only_new.open("p", "r", &resealed).unwrap(), b"x");
        // Signatures made before the rotation still verify during it.
        let sig = old.sign("state");
        assert!(rotated.verify("state", &sig));
        assert!(!only_new.verify("state", &sig));
        assert!(!rotated.verify("other", &sig));
    }

    #[test]
    fn refuses_weak_or_missing_keys() {
        assert_eq!(Keyring::parse("").unwrap_err(), SealError::NoKey);
        assert_eq!(Keyring::parse("short").unwrap_err(), SealError::ShortKey);
        assert!(Keyring::parse(&Keyring::generate_secret()).is_ok());
        assert!(!format!("{:?}", Keyring::parse(A).unwrap()).contains(A));
    }
}
