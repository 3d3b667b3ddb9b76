//! Secrets at rest. A step's API key or a webhook's signing key is sealed with
//! XChaCha20-Poly1305 under a 32-byte key that lives outside Postgres (`CRM_SECRET_KEY`, or
//! a key file readable only by the engine's user), so a copy of the database — a backup, a
//! replica, a leaked dump — holds no usable secret.
//!
//! Each sealed value is bound to where it belongs (its namespace and name, as associated
//! data): copied into another row, it does not open. A random 24-byte nonce per seal makes
//! the same value sealed twice look different. The key has a short public id, stored beside
//! each sealed value, so a wrong key is named as such instead of failing as "corrupt data".

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_BYTES: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "the secret key must be 32 bytes, given as 64 hex digits or base64 (make one with `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error("reading the secret key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("the value was sealed with key {sealed_with}, not with this engine's key {current}")]
    WrongKey { sealed_with: String, current: String },
    #[error("the sealed value is damaged or belongs elsewhere")]
    Damaged,
}

/// The key secrets are sealed with.
pub struct Vault {
    cipher: XChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Vault {
    /// A key given as 64 hex digits or as base64 of 32 bytes.
    pub fn from_text(text: &str) -> Result<Vault, VaultError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| VaultError::BadKey)?
        } else {
            STANDARD.decode(text).map_err(|_| VaultError::BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| VaultError::BadKey)?;
        Ok(Vault::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; 32]) -> Vault {
        let id = hex::encode(&Sha256::new().chain_update(b"crm secret key id\0").chain_update(key).finalize()[..6]);
        Vault { cipher: XChaCha20Poly1305::new(key.into()), id }
    }

    /// A key that lives only as long as this process: for tests and throwaway installations.
    pub fn ephemeral() -> Vault {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Vault::from_bytes(&key)
    }

    /// The key in `path`; when the file does not exist and `create` is set, a new random key
    /// is written there first (readable by its owner only).
    pub fn from_file(path: &Path, create: bool) -> Result<Vault, VaultError> {
        let err = |source| VaultError::KeyFile { path: path.display().to_string(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => Vault::from_text(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(err)?;
                writeln!(file, "{}", STANDARD.encode(key)).map_err(err)?;
                file.sync_all().map_err(err)?;
                Ok(Vault::from_bytes(&key))
            }
            Err(e) => Err(err(e)),
        }
    }

    /// A short public name of the key (not secret: a hash prefix).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext` for the secret `name` of `namespace`: nonce || ciphertext.
    pub fn seal(&self, namespace: &str, name: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated(namespace, name);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Vault::seal`] made for the same namespace and name, with key `key_id`.
    pub fn open(&self, key_id: &str, namespace: &str, name: &str, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if key_id != self.id {
            return Err(VaultError::WrongKey { sealed_with: key_id.to_string(), current: self.id.clone() });
        }
        if sealed.len() < NONCE_BYTES {
            return Err(VaultError::Damaged);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let aad = associated(namespace, name);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| VaultError::Damaged)
    }
}

fn associated(namespace: &str, name: &str) -> Vec<u8> {
    [namespace.as_bytes(), b"\0", name.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_where_it_was_sealed_and_with_its_key() {
        let vault = Vault::ephemeral();
        let sealed = vault.seal("step", "STRIPE_KEY", b"sk_live_123");
        assert!(!sealed.windows(11).any(|w| w == b"sk_live_123"), "the plaintext is not in the sealed bytes");
        assert_eq!(vault.open(vault.id(), "step", "STRIPE_KEY", &sealed).unwrap(), b"sk_live_123");
        assert_ne!(sealed, vault.seal("step", "STRIPE_KEY", b"sk_live_123"), "a fresh nonce every time");
        // Moved to another name or namespace, it does not open.
        assert!(matches!(vault.open(vault.id(), "step", "OTHER", &sealed), Err(VaultError::Damaged)));
        assert!(matches!(vault.open(vault.id(), "webhook", "STRIPE_KEY", &sealed), Err(VaultError::Damaged)));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(vault.open(vault.id(), "step", "STRIPE_KEY", &flipped), Err(VaultError::Damaged)));
        // Another key says so.
        let other = Vault::ephemeral();
        let e = other.open(vault.id(), "step", "STRIPE_KEY", &sealed).unwrap_err();
        assert!(e.to_string().contains(vault.id()), "{e}");
    }

    #[test]
    fn keys_come_from_text_or_a_file_made_on_first_use() {
        let hex_key = "11".repeat(32);
        let a = Vault::from_text(&hex_key).unwrap();
        let b = Vault::from_text(&STANDARD.encode([0x11u8; 32])).unwrap();
        assert_eq!(a.id(), b.id());
        assert!(matches!(Vault::from_text("short"), Err(VaultError::BadKey)));
        assert!(matches!(Vault::from_text(&STANDARD.encode([1u8; 16])), Err(VaultError::BadKey)));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secret.key");
        assert!(matches!(Vault::from_file(&path, false), Err(VaultError::KeyFile { .. })));
        let made = Vault::from_file(&path, true).unwrap();
        let again = Vault::from_file(&path, true).unwrap();
        assert_eq!(made.id(), again.id(), "the file is read, not replaced");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
