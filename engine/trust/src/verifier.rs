//! The worker's side: checking that a job was signed by the engine.

use ed25519_dalek::{Signature, VerifyingKey};

#[derive(Debug, Clone)]
pub struct JobVerifier {
    key: VerifyingKey,
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
        Ok(JobVerifier { key })
    }

    /// Whether `signature` (hex) is the engine's over exactly these bytes. Strict: no
    /// malleable signatures.
    pub fn verify(&self, payload: &[u8], signature: &str) -> bool {
        let Ok(bytes) = hex::decode(signature) else { return false };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else { return false };
        self.key.verify_strict(payload, &Signature::from_bytes(&bytes)).is_ok()
    }
}
