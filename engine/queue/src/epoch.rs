//! The epoch marker: a key naming Redis' current "life". Postgres remembers the last one
//! seen; a missing or different marker means Redis lost its data and every step in flight
//! must be sent again.

use crate::queue::{Queue, QueueError};

impl Queue {
    /// The marker's value, set to `candidate` when missing.
    pub async fn epoch(&self, candidate: &str) -> Result<String, QueueError> {
        let (value,): (Option<String>,) = redis::pipe()
            .cmd("SET")
            .arg(&self.keys.epoch)
            .arg(candidate)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&self.keys.epoch)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(value.unwrap_or_else(|| candidate.to_string()))
    }
}
