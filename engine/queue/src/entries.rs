//! What stream entries carry: bytes and the proof that the engine wrote them.

/// A job as the engine sends it: the serialized job, and the proof that the engine signed
/// it (`crm_trust`: one Ed25519 signature for the batch it was sent with, and the job's
/// path to what it signs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedJob {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// Which of the two job streams an entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// `{prefix}:jobs`, which every worker reads: a run's first steps, retries, and every
    /// step the engine did not hand straight to a worker
    Shared,
    /// `{prefix}:handed`: steps the engine handed to the worker whose results made them
    /// ready, in its answer to those results. Entered as already delivered to that worker,
    /// so no other worker reads them; another takes one over only once it is stale.
    Handed,
}

/// An entry of a job stream: what a worker acks, touches and takes over. Entry ids are
/// unique within one stream only, so the lane is part of the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryId {
    pub lane: Lane,
    pub id: String,
}

/// A job as a worker reads it: nothing about it is believed until the signature verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawJob {
    /// the stream entry, what the worker acks
    pub entry: EntryId,
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
