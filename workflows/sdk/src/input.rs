//! The step's input, parsed from the JSON documents the host hands over.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{StepContext, StepError, from_value};

#[derive(Debug)]
pub struct Input {
    pub context: StepContext,
    /// the run's input
    pub run_input: Value,
    /// outputs of the steps this one needs, by step id
    pub deps: BTreeMap<String, Value>,
    /// the step's `config` from the manifest (`Null` when absent)
    pub config: Value,
}

impl Input {
    /// The config as a typed struct; a missing config reads as `{}` so that structs whose
    /// fields all have defaults work without one.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        let value = if self.config.is_null() { Value::Object(Default::default()) } else { self.config.clone() };
        from_value(value, "step config")
    }

    /// The run input as a typed struct.
    pub fn run_input<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        from_value(self.run_input.clone(), "run input")
    }

    /// One field of the run input, which must be present.
    pub fn run_input_field<T: DeserializeOwned>(&self, name: &str) -> Result<T, StepError> {
        let value = self
            .run_input
            .get(name)
            .cloned()
            .ok_or_else(|| StepError::invalid_input(format!("the run input has no `{name}` field")))?;
        from_value(value, &format!("run input field `{name}`"))
    }

    /// The output of a step this one needs, which must be present.
    pub fn dep(&self, step: &str) -> Result<&Value, StepError> {
        self.deps
            .get(step)
            .ok_or_else(|| StepError::invalid_input(format!("no output of step `{step}`: is it listed in `needs`?")))
    }

    /// A field looked up first in the config, then in the run input: lets a manifest fix a
    /// value or leave it to whoever starts the run.
    pub fn setting<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StepError> {
        let found = self.config.get(name).filter(|v| !v.is_null()).or_else(|| self.run_input.get(name));
        match found {
            None | Some(Value::Null) => Ok(None),
            Some(v) => from_value(v.clone(), &format!("`{name}`")).map(Some),
        }
    }
}
