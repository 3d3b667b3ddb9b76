//! Write a `crm` workflow step as one plain function.
//!
//! ```ignore
//! use crm_sdk::{Input, Output, StepError};
//!
//! fn run(input: Input) -> Result<Output, StepError> {
//!     let id: i64 = input.run_input_field("contact_id")?;
//!     let contact = crm_sdk::records::get_contact(id)?;
//!     Ok(Output::json(serde_json::json!({ "name": contact.name })))
//! }
//!
//! crm_sdk::step!(run);
//! ```
//!
//! Host calls return `Result<_, HostError>`, which converts into [`StepError`] with `?`:
//! a transient host failure becomes a retryable error, everything else a permanent one.
//! Calling a host interface the step was not granted ends the step with
//! `capability_denied`; there is nothing to handle.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The generated bindings of the `step` world (`wit/step.wit`).
#[doc(hidden)]
#[allow(clippy::too_many_arguments, reason = "generated: one argument per WIT parameter")]
pub mod bindings {
    wit_bindgen::generate!({
        world: "step",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_step_world",
        default_bindings_module: "crm_sdk::bindings",
    });
}

pub use bindings::crm::automation::types::{ErrorKind, HostError, StepContext, StepError};
pub use bindings::crm::automation::{http, notify, records, secrets, state};

mod defaults;
mod input;
mod log;
mod money;
mod output;

pub use input::Input;
pub use log::{debug, error, info, warn};
pub use money::format_money;
pub use output::Output;

/// Re-exported so `step!` works without the step crate naming serde_json itself.
pub use serde_json;

impl StepError {
    /// Retrying cannot help: bad input, a missing record, a broken contract.
    pub fn permanent(code: &str, message: impl Into<String>) -> StepError {
        StepError { kind: ErrorKind::Permanent, code: code.to_string(), message: message.into() }
    }

    /// A transient failure: the scheduler tries the step again with backoff.
    pub fn retryable(code: &str, message: impl Into<String>) -> StepError {
        StepError { kind: ErrorKind::Retryable, code: code.to_string(), message: message.into() }
    }

    /// The step's input or config does not have the expected shape.
    pub fn invalid_input(message: impl Into<String>) -> StepError {
        StepError::permanent("invalid_input", message)
    }
}

impl From<HostError> for StepError {
    fn from(e: HostError) -> StepError {
        match e {
            HostError::NotFound(m) => StepError::permanent("not_found", m),
            HostError::Invalid(m) => StepError::permanent("invalid", m),
            HostError::Conflict(m) => StepError::permanent("conflict", m),
            HostError::Unavailable(m) => StepError::retryable("unavailable", m),
        }
    }
}

/// Milliseconds since the Unix epoch, from the host's clock (the same unit as record times).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses a JSON document handed over by the host; `what` names it in the error.
fn parse_json(text: &str, what: &str) -> Result<Value, StepError> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| StepError::invalid_input(format!("{what} is not valid JSON: {e}")))
}

/// Deserializes a JSON value into the shape a step expects; `what` names it in the error.
pub fn from_value<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, StepError> {
    serde_json::from_value(value).map_err(|e| StepError::invalid_input(format!("{what}: {e}")))
}

#[doc(hidden)]
pub fn __run(
    input: bindings::crm::automation::types::StepInput,
    f: fn(Input) -> Result<Output, StepError>,
) -> Result<bindings::crm::automation::types::StepOutput, StepError> {
    let mut deps = BTreeMap::new();
    for (name, text) in input.deps {
        let value = parse_json(&text, &format!("output of step `{name}`"))?;
        deps.insert(name, value);
    }
    let input = Input {
        context: input.context,
        run_input: parse_json(&input.run_input, "the run input")?,
        deps,
        config: parse_json(&input.config, "the step config")?,
    };
    let output = f(input)?;
    let next = output.next.clone();
    Ok(bindings::crm::automation::types::StepOutput { output: output.into_text(), next })
}

/// Exports `f: fn(Input) -> Result<Output, StepError>` as the component's `run`.
#[macro_export]
macro_rules! step {
    ($f:path) => {
        struct __CrmStep;

        impl $crate::bindings::Guest for __CrmStep {
            fn run(
                input: $crate::bindings::crm::automation::types::StepInput,
            ) -> ::core::result::Result<
                $crate::bindings::crm::automation::types::StepOutput,
                $crate::StepError,
            > {
                $crate::__run(input, $f)
            }
        }

        $crate::bindings::export_step_world!(__CrmStep with_types_in $crate::bindings);
    };
}

/// Milliseconds in one day, for the day-based settings of the examples.
pub const DAY_MS: i64 = 86_400_000;
