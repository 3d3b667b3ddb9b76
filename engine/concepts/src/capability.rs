//! Capabilities a workflow manifest grants to a step. A host import checks the grant
//! before doing anything, and refuses with an error that names the missing capability.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::egress::Egress;

/// One grantable capability. The string form (`records:read`, `http:api.example.com`,
/// `http:http://127.0.0.1:8080`, …) is what manifests and error messages use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Capability {
    /// read and search contacts, companies, deals, tasks, notes
    RecordsRead,
    /// create and update records
    RecordsWrite,
    /// structured log lines into the step's log
    Log,
    /// outbound HTTP to exactly this scheme, host and port (no wildcards: an allow-list,
    /// not a pattern); `http:HOST` is `https://HOST:443`
    Http(Egress),
    /// read the named secret
    Secret(String),
    /// the workflow's own key-value state
    State,
    /// send a chat message to a CRM user (the host delivers it through the bot)
    Notify,
}

impl Capability {
    pub fn as_string(&self) -> String {
        match self {
            Capability::RecordsRead => "records:read".into(),
            Capability::RecordsWrite => "records:write".into(),
            Capability::Log => "log".into(),
            Capability::Http(h) => format!("http:{h}"),
            Capability::Secret(s) => format!("secret:{s}"),
            Capability::State => "state".into(),
            Capability::Notify => "notify".into(),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown capability {0:?}: expected one of records:read, records:write, log, state, notify, http:HOST (https on 443), http:SCHEME://HOST:PORT, secret:NAME"
)]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid_name = |n: &str| {
            !n.is_empty() && n.len() <= 253 && n.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        };
        match s {
            "records:read" => Ok(Capability::RecordsRead),
            "records:write" => Ok(Capability::RecordsWrite),
            "log" => Ok(Capability::Log),
            "state" => Ok(Capability::State),
            "notify" => Ok(Capability::Notify),
            _ => {
                if let Some(destination) = s.strip_prefix("http:")
                    && let Ok(egress) = destination.parse::<Egress>()
                {
                    return Ok(Capability::Http(egress));
                }
                if let Some(n) = s.strip_prefix("secret:")
                    && valid_name(n)
                {
                    return Ok(Capability::Secret(n.to_string()));
                }
                Err(UnknownCapability(s.to_string()))
            }
        }
    }
}

impl TryFrom<String> for Capability {
    type Error = UnknownCapability;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Capability> for String {
    fn from(c: Capability) -> String {
        c.as_string()
    }
}

/// The set of capabilities one step holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grants(pub BTreeSet<Capability>);

impl Grants {
    pub fn new(caps: impl IntoIterator<Item = Capability>) -> Self {
        Grants(caps.into_iter().collect())
    }
    pub fn has(&self, cap: &Capability) -> bool {
        self.0.contains(cap)
    }
    /// `Err(MissingCapability)` unless granted; host imports call this first.
    pub fn require(&self, cap: Capability) -> Result<(), MissingCapability> {
        if self.has(&cap) { Ok(()) } else { Err(MissingCapability(cap)) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capability `{0}` was not granted to this step; add it to the step's `capabilities` in workflow.toml")]
pub struct MissingCapability(pub Capability);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        for s in [
            "records:read",
            "records:write",
            "log",
            "state",
            "notify",
            "http:api.example.com",
            "http:http://127.0.0.1:8080",
            "secret:SLACK_TOKEN",
        ] {
            assert_eq!(s.parse::<Capability>().unwrap().to_string(), s);
        }
        assert_eq!(
            "http:https://api.example.com:443".parse::<Capability>().unwrap().to_string(),
            "http:api.example.com"
        );
        for bad in ["", "records", "http:", "http:*", "http:https://a.example/x", "secret:a b", "fs:/etc"] {
            assert!(bad.parse::<Capability>().is_err(), "{bad}");
        }
        let g = Grants::new([Capability::Log]);
        let e = g.require(Capability::RecordsWrite).unwrap_err();
        assert!(e.to_string().contains("records:write"));
    }
}
