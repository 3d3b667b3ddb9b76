//! `log`, `secrets`, `state` and `notify`: the small imports, each behind its capability.

use crm_concepts::capability::Capability;
use crm_concepts::step::LogLevel;

use crate::bindings::HostError;
use crate::bindings::crm::automation::{log, notify, secrets, state, types};
use crate::services::Services;
use crate::state::StepState;

/// State keys are short names, values small JSON documents: it is a place for cursors
/// and counters, not a database.
const MAX_STATE_KEY: usize = 200;
const MAX_STATE_VALUE: usize = 64 * 1024;
/// Telegram's message limit; longer texts would be split by the bot anyway.
const MAX_NOTIFY_TEXT: usize = 4096;

type Reply<T> = wasmtime::Result<Result<T, HostError>>;

impl<S: Services> types::Host for StepState<S> {}

impl<S: Services> log::Host for StepState<S> {
    async fn write(&mut self, level: log::Level, message: String, fields: String) -> wasmtime::Result<()> {
        self.require(Capability::Log)?;
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        // Malformed fields are kept as text rather than lost: the log is for debugging.
        let fields = if fields.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&fields).unwrap_or(serde_json::Value::String(fields))
        };
        self.log.push(level, message, fields);
        Ok(())
    }
}

impl<S: Services> secrets::Host for StepState<S> {
    async fn get(&mut self, name: String) -> Reply<String> {
        // An invalid name can never have been granted, so it is refused like any other.
        let cap: Capability = match format!("secret:{name}").parse() {
            Ok(cap) => cap,
            Err(_) => {
                return Ok(Err(HostError::Invalid(format!("{name:?} is not a valid secret name"))));
            }
        };
        self.require(cap)?;
        Ok(self.services.secret(&self.cx, &name).await)
    }
}

fn check_key(key: &str) -> Result<(), HostError> {
    if key.is_empty() || key.len() > MAX_STATE_KEY {
        return Err(HostError::Invalid(format!("state keys are 1 to {MAX_STATE_KEY} bytes")));
    }
    Ok(())
}

impl<S: Services> state::Host for StepState<S> {
    async fn get(&mut self, key: String) -> Reply<Option<String>> {
        self.require(Capability::State)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.services.state_get(&self.cx, &key).await)
    }

    async fn set(&mut self, key: String, value: String) -> Reply<()> {
        self.require(Capability::State)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_STATE_VALUE {
            return Ok(Err(HostError::Invalid(format!("state values are at most {MAX_STATE_VALUE} bytes"))));
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&value) {
            return Ok(Err(HostError::Invalid(format!("state values are JSON documents: {e}"))));
        }
        Ok(self.services.state_set(&self.cx, &key, &value).await)
    }

    async fn delete(&mut self, key: String) -> Reply<()> {
        self.require(Capability::State)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.services.state_delete(&self.cx, &key).await)
    }
}

impl<S: Services> notify::Host for StepState<S> {
    async fn send(&mut self, user_id: i64, text: String) -> Reply<()> {
        self.require(Capability::Notify)?;
        if text.trim().is_empty() || text.chars().count() > MAX_NOTIFY_TEXT {
            return Ok(Err(HostError::Invalid(format!("a message is 1 to {MAX_NOTIFY_TEXT} characters"))));
        }
        Ok(self.services.notify(&self.cx, user_id, &text).await)
    }
}
