//! The engine's key, derived from its seed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::batch;
use crate::ticket::{Ticket, TicketError};

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct EngineKey {
    signing: SigningKey,
    /// HMAC under the MAC key of tickets and sealed entries, with the key already taken
    /// in: each MAC starts from a copy instead of hashing the key's two padded blocks
    /// again (four MACs per run). The key is derived, so a leaked MAC key does not give
    /// away the signing key.
    mac: HmacSha256,
}

impl std::fmt::Debug for EngineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineKey").field("public_key", &self.public_key()).finish_non_exhaustive()
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; the error case cannot happen.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

impl EngineKey {
    pub fn from_seed(seed: [u8; 32]) -> EngineKey {
        let mut derive = keyed(&seed);
        derive.update(b"crm attempt tickets v1");
        EngineKey { signing: SigningKey::from_bytes(&seed), mac: keyed(&derive.finalize().into_bytes()) }
    }

    /// The MAC of `data` under `domain`, from a copy of the keyed state.
    fn mac(&self, domain: &[u8], data: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(domain);
        mac.update(data);
        mac
    }

    /// The public key workers verify jobs with, as hex.
    pub fn public_key(&self) -> String {
        hex::encode(self.signing.verifying_key().as_bytes())
    }

    /// Proofs for jobs sent together, one per payload in order: one signature for the
    /// batch (see [`crate::batch`]), and each job's path to what it signs.
    pub fn sign_jobs<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Vec<String> {
        let mut proofs = Vec::with_capacity(payloads.len());
        for chunk in payloads.chunks(batch::MAX_BATCH) {
            let leaves: Vec<batch::Hash> = chunk.iter().map(|p| batch::leaf(p.as_ref())).collect();
            let (root, paths) = batch::tree(&leaves);
            let signature = self.signing.sign(&batch::signed_message(&root)).to_bytes();
            for (index, path) in paths.into_iter().enumerate() {
                let proof = batch::Proof { signature, size: leaves.len() as u32, index: index as u32, path };
                proofs.push(proof.encode());
            }
        }
        proofs
    }

    /// A ticket for one attempt: its claims, and a MAC over them.
    pub fn mint(&self, ticket: &Ticket) -> String {
        // room for a ticket's claims (about 200 bytes), so the buffer is not grown and copied
        let mut claims = Vec::with_capacity(320);
        if serde_json::to_writer(&mut claims, ticket).is_err() {
            claims.clear();
        }
        let tag = self.mac(b"ticket.", &claims).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&claims), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The claims of a ticket this engine minted; expiry is the caller's question.
    pub fn check(&self, ticket: &str) -> Result<Ticket, TicketError> {
        let (claims, tag) = ticket.split_once('.').ok_or(TicketError::Malformed)?;
        let claims = URL_SAFE_NO_PAD.decode(claims).map_err(|_| TicketError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TicketError::Malformed)?;
        self.mac(b"ticket.", &claims).verify_slice(&tag).map_err(|_| TicketError::Forged)?;
        serde_json::from_slice(&claims).map_err(|_| TicketError::Malformed)
    }

    /// A MAC over something the engine publishes (a completion), as hex.
    pub fn seal(&self, data: &[u8]) -> String {
        hex::encode(self.mac(b"sealed.", data).finalize().into_bytes())
    }

    /// Whether `mac` is this engine's seal over `data`.
    pub fn is_sealed(&self, data: &[u8], mac: &str) -> bool {
        hex::decode(mac).is_ok_and(|tag| self.mac(b"sealed.", data).verify_slice(&tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobVerifier;

    fn ticket() -> Ticket {
        Ticket {
            run_id: uuid::Uuid::nil(),
            step: "score".into(),
            attempt: 1,
            workflow: "qualify-lead".into(),
            version: 2,
            acting_user: Some(7),
            expires_at_ms: 1_000,
            provisional: None,
        }
    }

    #[test]
    fn tickets_verify_only_unchanged_and_under_the_same_key() {
        let key = EngineKey::from_seed([1; 32]);
        let t = key.mint(&ticket());
        assert_eq!(key.check(&t).unwrap(), ticket());
        assert_eq!(EngineKey::from_seed([2; 32]).check(&t), Err(TicketError::Forged));
        let (claims, tag) = t.split_once('.').unwrap();
        let mut widened = ticket();
        widened.acting_user = Some(1);
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).unwrap()));
        assert_ne!(claims, forged.split_once('.').unwrap().0);
        assert_eq!(key.check(&forged), Err(TicketError::Forged));
        assert_eq!(key.check("garbage"), Err(TicketError::Malformed));
    }

    #[test]
    fn jobs_verify_under_the_public_key_only() {
        let key = EngineKey::from_seed([1; 32]);
        let verifier = JobVerifier::from_hex(&key.public_key()).unwrap();
        let jobs: Vec<&[u8]> = vec![b"job a", b"job b", b"job c"];
        let proofs = key.sign_jobs(&jobs);
        assert_eq!(proofs.len(), 3);
        for (job, proof) in jobs.iter().zip(&proofs) {
            assert!(verifier.verify(job, proof));
            assert!(!verifier.verify(b"job!", proof), "another payload under a checked root");
        }
        // each proof holds for its own job only
        assert!(!verifier.verify(jobs[0], &proofs[1]));
        // another key's signature over a batch the worker checked already
        let forged = EngineKey::from_seed([2; 32]).sign_jobs(&jobs);
        assert!(!verifier.verify(jobs[0], &forged[0]));
        let forged = EngineKey::from_seed([2; 32]).sign_jobs(&[b"job z"]);
        assert!(!verifier.verify(b"job z", &forged[0]));
        assert!(!verifier.verify(b"job a", "zz"));
        // a lone job is a batch of one
        let lone = key.sign_jobs(&[b"lone"]);
        assert!(verifier.verify(b"lone", &lone[0]));
    }

    /// Tickets and seals made before the key kept its HMAC state (by an engine before an
    /// upgrade, or beside one) still check: the tags are HMAC-SHA256 under the derived key.
    #[test]
    fn tags_are_plain_hmac_under_the_derived_key() {
        let seed = [1; 32];
        let plain = |key: &[u8], parts: &[&[u8]]| {
            let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap();
            parts.iter().for_each(|p| m.update(p));
            m.finalize().into_bytes()
        };
        let derived = plain(&seed, &[b"crm attempt tickets v1"]);
        let key = EngineKey::from_seed(seed);
        assert_eq!(key.seal(b"completion"), hex::encode(plain(&derived, &[b"sealed.", b"completion"])));
        let claims = serde_json::to_vec(&ticket()).unwrap();
        let minted = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&claims),
            URL_SAFE_NO_PAD.encode(plain(&derived, &[b"ticket.", &claims]))
        );
        assert_eq!(key.mint(&ticket()), minted);
        assert_eq!(key.check(&minted).unwrap(), ticket());
    }

    #[test]
    fn seals_tell_forgeries() {
        let key = EngineKey::from_seed([1; 32]);
        let mac = key.seal(b"completion");
        assert!(key.is_sealed(b"completion", &mac));
        assert!(!key.is_sealed(b"completion2", &mac));
        assert!(!key.is_sealed(b"completion", "00"));
    }
}
