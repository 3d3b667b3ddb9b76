//! A step's outcome as workers hand it in: `{"status": "ok", "output": …, "next": […]}` or
//! `{"status": "failed", "error": {…}}`. It is read by a reader of its own (not serde's
//! internally tagged form, which copies the whole object first); it must accept and refuse
//! exactly what that form does, which `Tagged` below keeps as the reference.

use std::sync::Arc;

use crm_concepts::step::{StepError, StepOutcome};
use serde::Deserialize;
use serde_json::{Value, json};

/// The form `StepOutcome` was read with before.
#[derive(Debug, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Tagged {
    Ok {
        output: Value,
        #[serde(default)]
        next: Option<Vec<String>>,
    },
    Failed {
        error: StepError,
    },
}

impl From<Tagged> for StepOutcome {
    fn from(t: Tagged) -> StepOutcome {
        match t {
            Tagged::Ok { output, next } => StepOutcome::Ok { output: Arc::new(output), next },
            Tagged::Failed { error } => StepOutcome::Failed { error },
        }
    }
}

fn both(text: &str) -> (Result<StepOutcome, String>, Result<StepOutcome, String>) {
    let ours = serde_json::from_str::<StepOutcome>(text).map_err(|e| e.to_string());
    let reference = serde_json::from_str::<Tagged>(text).map(StepOutcome::from).map_err(|e| e.to_string());
    (ours, reference)
}

#[test]
fn it_reads_what_the_tagged_form_reads_and_refuses_what_it_refuses() {
    let cases = [
        r#"{"status":"ok","output":{"n":2,"items":[1,"a",null,{"deep":[true]}]}}"#,
        r#"{"output":{"n":2},"status":"ok"}"#,
        r#"{"status":"ok","output":null}"#,
        r#"{"status":"ok","output":7,"next":["b","c"]}"#,
        r#"{"status":"ok","output":"x","next":null}"#,
        r#"{"status":"ok","output":[],"next":[]}"#,
        r#"{"status":"ok","output":{},"unknown":1}"#,
        r#"{"status":"ok","output":{},"error":{"kind":"permanent","code":"guest","message":"m"}}"#,
        r#"{"status":"failed","error":{"kind":"retryable","code":"timeout","message":"too slow"}}"#,
        r#"{"error":{"kind":"permanent","code":"guest","message":"m"},"status":"failed","output":1}"#,
        // the other variant's fields are not read, however they are written
        r#"{"status":"ok","output":1,"error":"not an object"}"#,
        r#"{"status":"failed","error":{"kind":"permanent","code":"guest","message":"m"},"next":"b"}"#,
        // refused by both
        r#"{"status":"ok"}"#,
        r#"{"status":"ok","next":["b"]}"#,
        r#"{"status":"failed"}"#,
        r#"{"status":"failed","error":"not an object"}"#,
        r#"{"status":"done","output":1}"#,
        r#"{"output":1}"#,
        r#"{"status":1,"output":1}"#,
        r#"{"status":"ok","output":1,"next":"b"}"#,
        r#"["ok",1]"#,
        r#"null"#,
        r#"{"status":"ok","output":{"n":}"#,
    ];
    for text in cases {
        let (ours, reference) = both(text);
        assert_eq!(ours.is_ok(), reference.is_ok(), "{text}: ours {ours:?}, the tagged form {reference:?}");
        if let (Ok(a), Ok(b)) = (&ours, &reference) {
            assert_eq!(a, b, "{text}");
        }
    }
}

#[test]
fn an_output_of_null_is_an_output() {
    let outcome: StepOutcome = serde_json::from_str(r#"{"status":"ok","output":null}"#).unwrap();
    assert_eq!(outcome, StepOutcome::Ok { output: Arc::new(Value::Null), next: None });
}

#[test]
fn a_refusal_names_what_is_missing() {
    let err = serde_json::from_str::<StepOutcome>(r#"{"status":"ok","next":["b"]}"#).unwrap_err().to_string();
    assert!(err.contains("missing field `output`"), "{err}");
    let err = serde_json::from_str::<StepOutcome>(r#"{"status":"failed"}"#).unwrap_err().to_string();
    assert!(err.contains("missing field `error`"), "{err}");
    let err = serde_json::from_str::<StepOutcome>(r#"{"status":"done","output":1}"#).unwrap_err().to_string();
    assert!(err.contains("unknown variant `done`"), "{err}");
}

#[test]
fn what_is_written_is_read_back_the_same() {
    for outcome in [
        StepOutcome::Ok { output: Arc::new(json!({"n": 1, "s": "é\"\\"})), next: Some(vec!["b".into()]) },
        StepOutcome::Ok { output: Arc::new(Value::Null), next: None },
        StepOutcome::Failed {
            error: StepError::retryable(crm_concepts::step::StepErrorCode::Timeout, "the step took too long"),
        },
    ] {
        let text = serde_json::to_string(&outcome).unwrap();
        assert_eq!(serde_json::from_str::<StepOutcome>(&text).unwrap(), outcome, "{text}");
    }
}
