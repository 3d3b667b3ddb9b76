//! The names of an installation's keys.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub jobs: String,
    pub workers: String,
    pub completions: String,
    pub epoch: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            jobs: format!("{prefix}:jobs"),
            workers: format!("{prefix}:workers"),
            completions: format!("{prefix}:completions"),
            epoch: format!("{prefix}:epoch"),
        }
    }
}
