//! The worker's side: checking that a job was signed by the engine.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signature, VerifyingKey};

use crate::batch::{self, Hash, Proof};

/// Roots whose signature a worker checked; a job of a batch it has seen costs it a few
/// hashes, not a signature check.
const REMEMBERED_ROOTS: usize = 4096;

/// Each checked root with the signature that held: a proof is believed from memory only
/// with the very signature that was checked (the engine's signatures are deterministic and
/// checked strictly, so there is one), never with another key's.
#[derive(Debug, Default)]
struct Checked {
    roots: HashMap<Hash, [u8; 64]>,
    order: VecDeque<Hash>,
}

#[derive(Debug, Clone)]
pub struct JobVerifier {
    key: VerifyingKey,
    checked: Arc<Mutex<Checked>>,
}

#[derive(Debug, thiserror::Error)]
#[error("not an Ed25519 public key: {0}")]
pub struct BadPublicKey(String);

impl JobVerifier {
    pub fn from_hex(public_key: &str) -> Result<JobVerifier, BadPublicKey> {
        let bytes: [u8; 32] = hex::decode(public_key)
            .map_err(|e| BadPublicKey(e.to_string()))?
            .try_into()
            .map_err(|_| BadPublicKey("expected 32 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|e| BadPublicKey(e.to_string()))?;
        Ok(JobVerifier { key, checked: Arc::default() })
    }

    /// Whether `proof` shows that the engine signed a batch holding exactly these bytes
    /// ([`crate::EngineKey::sign_jobs`]). Strict: no malleable signatures.
    pub fn verify(&self, payload: &[u8], proof: &str) -> bool {
        let Some(proof) = Proof::decode(proof) else { return false };
        let Some(root) = proof.root(payload) else { return false };
        let remembered = self.checked.lock().unwrap_or_else(|p| p.into_inner()).roots.get(&root).copied();
        if let Some(signature) = remembered {
            return signature == proof.signature;
        }
        if self.key.verify_strict(&batch::signed_message(&root), &Signature::from_bytes(&proof.signature)).is_err() {
            return false;
        }
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.roots.insert(root, proof.signature).is_none() {
            if checked.order.len() >= REMEMBERED_ROOTS
                && let Some(old) = checked.order.pop_front()
            {
                checked.roots.remove(&old);
            }
            checked.order.push_back(root);
        }
        true
    }
}
