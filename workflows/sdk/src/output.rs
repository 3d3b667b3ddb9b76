//! What a step returns.

use serde::Serialize;
use serde_json::Value;

use crate::StepError;

#[derive(Debug, Clone)]
pub struct Output {
    body: Body,
    /// successor steps to run; `None` runs all of them
    pub next: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
enum Body {
    Value(Value),
    /// already serialized JSON, handed over as is
    Text(String),
}

impl Output {
    pub fn json(value: Value) -> Output {
        Output { body: Body::Value(value), next: None }
    }

    /// Serializes any value as the output.
    pub fn of<T: Serialize>(value: &T) -> Result<Output, StepError> {
        serde_json::to_value(value)
            .map(Output::json)
            .map_err(|e| StepError::permanent("output_not_serializable", e.to_string()))
    }

    /// An output the step has already serialized as JSON text: saves a copy for large
    /// outputs. The host checks it is valid JSON.
    pub fn json_text(text: String) -> Output {
        Output { body: Body::Text(text), next: None }
    }

    /// Runs only these successor steps (branching); an empty list ends this branch.
    pub fn with_next<I, S>(mut self, steps: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.next = Some(steps.into_iter().map(Into::into).collect());
        self
    }

    pub(crate) fn into_text(self) -> String {
        match self.body {
            Body::Value(v) => v.to_string(),
            Body::Text(t) => t,
        }
    }
}
