//! `log`, `secrets`, `state` and `notify`: the small imports, each behind its capability.

use crm_concepts::capability::Capability;
use crm_concepts::host_call::{HostCall, HostReply};
use crm_concepts::step::LogLevel;

use crate::bindings::HostError;
use crate::bindings::crm::automation::{log, notify, secrets, state, types};
use crate::host_calls::HostCalls;
use crate::state::StepState;

type Reply<T> = wasmtime::Result<Result<T, HostError>>;

fn done(r: HostReply) -> Option<()> {
    matches!(r, HostReply::Done).then_some(())
}

impl<H: HostCalls> types::Host for StepState<H> {}

impl<H: HostCalls> log::Host for StepState<H> {
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

impl<H: HostCalls> secrets::Host for StepState<H> {
    async fn get(&mut self, name: String) -> Reply<String> {
        // An invalid name can never have been granted, so it is refused like any other.
        if format!("secret:{name}").parse::<Capability>().is_err() {
            return Ok(Err(HostError::Invalid(format!("{name:?} is not a valid secret name"))));
        }
        self.serve(HostCall::Secret { name }, |r| if let HostReply::Secret(s) = r { Some(s) } else { None }).await
    }
}

impl<H: HostCalls> state::Host for StepState<H> {
    async fn get(&mut self, key: String) -> Reply<Option<String>> {
        self.serve(HostCall::StateGet { key }, |r| match r {
            HostReply::State(v) => Some(v.map(|v| v.to_string())),
            _ => None,
        })
        .await
    }

    async fn set(&mut self, key: String, value: String) -> Reply<()> {
        self.require(Capability::State)?;
        let value = match serde_json::from_str(&value) {
            Ok(v) => v,
            Err(e) => return Ok(Err(HostError::Invalid(format!("state values are JSON documents: {e}")))),
        };
        self.serve(HostCall::StateSet { key, value }, done).await
    }

    async fn delete(&mut self, key: String) -> Reply<()> {
        self.serve(HostCall::StateDelete { key }, done).await
    }
}

impl<H: HostCalls> notify::Host for StepState<H> {
    async fn send(&mut self, user_id: i64, text: String) -> Reply<()> {
        self.serve(HostCall::Notify { user_id, text, buttons: Vec::new() }, done).await
    }

    async fn send_with_buttons(&mut self, user_id: i64, text: String, buttons: Vec<notify::Button>) -> Reply<()> {
        self.require(Capability::Notify)?;
        match crate::convert::buttons(buttons) {
            Ok(buttons) => self.serve(HostCall::Notify { user_id, text, buttons }, done).await,
            Err(e) => Ok(Err(e)),
        }
    }
}
