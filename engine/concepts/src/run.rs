//! Workflow runs: how one is requested, the states it and its steps pass through, and the
//! completion the bot receives when it ends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/runs`, and what triggers submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub workflow: String,
    #[serde(default = "empty_object")]
    pub input: serde_json::Value,
    /// the CRM user the run acts for (the bot's linked chat user, a trigger's owner)
    #[serde(default)]
    pub acting_user: Option<i64>,
    /// the chat that asked, answered when the run ends
    #[serde(default)]
    pub notify: Option<Notify>,
    /// a second request with the same key for the same workflow returns the first run
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// who started the run: `api`, `bot`, `cron`, `record_event`, `webhook`
    #[serde(default)]
    pub trigger: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub chat_id: i64,
    /// the bot's "running…" message, edited into the result
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<i64>,
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$variant),)*
                    _ => Err(format!(
                        "unknown {} {s:?}: expected one of {}",
                        stringify!($name),
                        [$($s),*].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum! {
    /// A run is `queued` until its first result arrives, `running` until every step is
    /// settled, then ends in one of the three final states. It is `waiting` while no step
    /// is in flight and a `wait`, `wait_event` or `approval` step holds it.
    RunStatus {
        Queued = "queued",
        Running = "running",
        Waiting = "waiting",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl RunStatus {
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled)
    }
}

string_enum! {
    /// `waiting` for its dependencies; `queued` once ready (handed to Redis, or waiting out a
    /// retry backoff); then one of the final states. `dead_letter` is a retryable failure
    /// that used up its attempts; `failed` is a permanent error; `skipped` is a step no
    /// taken branch led to. `held` is a `wait`, `wait_event` or `approval` step waiting for
    /// its time, event or decision: a row in Postgres, nothing on Redis.
    StepStatus {
        Waiting = "waiting",
        Queued = "queued",
        Held = "held",
        Succeeded = "succeeded",
        Failed = "failed",
        DeadLetter = "dead_letter",
        Skipped = "skipped",
        Cancelled = "cancelled",
    }
}

impl StepStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, StepStatus::Waiting | StepStatus::Queued | StepStatus::Held)
    }
}

string_enum! {
    /// How one attempt ended. `lost` means no result came back before the engine's
    /// deadline (the worker died and nobody reclaimed the job).
    AttemptStatus {
        Succeeded = "succeeded",
        Failed = "failed",
        Lost = "lost",
    }
}

/// Why a run failed: the step and its error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub code: String,
    pub message: String,
}

/// Published when a run ends, for the bot (`GET /api/completions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Completion {
    pub run_id: Uuid,
    pub workflow: String,
    pub status: RunStatus,
    pub rendered: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_user: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub result: Option<std::sync::Arc<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// the acting user's language setting, filled in by the stream that serves the
    /// completion to the bot (`None`: no setting, or no user: the bot decides)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<crate::language::Language>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_strings() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
        }
        for s in StepStatus::ALL {
            assert_eq!(s.as_str().parse::<StepStatus>().unwrap(), *s);
        }
        assert!("done".parse::<RunStatus>().unwrap_err().contains("expected one of queued"));
        assert!(StepStatus::DeadLetter.is_final() && !StepStatus::Queued.is_final());
    }

    #[test]
    fn run_request_defaults_and_rejects_unknown_fields() {
        let r: RunRequest = serde_json::from_str(r#"{"workflow": "w"}"#).unwrap();
        assert_eq!(r.input, serde_json::json!({}));
        assert!(serde_json::from_str::<RunRequest>(r#"{"workflow": "w", "imput": {}}"#).is_err());
    }
}
