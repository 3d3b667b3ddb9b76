//! What stream entries carry: bytes and the proof that the engine wrote them.

/// A job as the engine sends it: the serialized job, and the proof that the engine signed
/// it (`crm_trust`: one Ed25519 signature for the batch it was sent with, and the job's
/// path to what it signs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedJob {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// A job as a worker reads it: nothing about it is believed until the signature verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawJob {
    /// the stream entry id, what the worker acks
    pub id: String,
    pub payload: Vec<u8>,
    /// absent on an entry that was not written by the engine
    pub signature: Option<String>,
    /// when the engine added it, µs since the Unix epoch (0 if absent); outside the
    /// signature, as it is timing only
    pub sent_us: u64,
}

/// A completion entry as the API reads it: its data and the engine's seal over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionEntry {
    pub id: String,
    pub data: Vec<u8>,
    pub seal: Option<String>,
}
