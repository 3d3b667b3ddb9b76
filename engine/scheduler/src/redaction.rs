//! Secret values cut out of what a step hands in, before anything is stored. A step granted
//! `secret:NAME` may log the value, return it, or put it in an error message by mistake (or
//! on purpose); its logs, output and errors are readable by every viewer of the run, so the
//! engine replaces each granted secret's value with `[secret:NAME]` first. Values shorter
//! than [`MIN_LEN`] are left alone: replacing "1" everywhere would destroy the output and hide
//! nothing.

use crm_concepts::capability::Capability;
use crm_concepts::step::{StepOutcome, StepResult};
use serde_json::Value;

/// Shorter values are not redacted.
pub const MIN_LEN: usize = 4;

/// The secret names a step's grants name.
pub fn granted(capabilities: &[String]) -> Vec<String> {
    capabilities
        .iter()
        .filter_map(|c| match c.parse::<Capability>() {
            Ok(Capability::Secret(name)) => Some(name),
            _ => None,
        })
        .collect()
}

/// Replaces every value of `secrets` (name, value) in the result's logs, output and error.
/// Returns how many replacements were made.
pub fn scrub(result: &mut StepResult, secrets: &[(String, String)]) -> usize {
    let secrets: Vec<&(String, String)> = secrets.iter().filter(|(_, v)| v.len() >= MIN_LEN).collect();
    if secrets.is_empty() {
        return 0;
    }
    let mut n = 0;
    for line in &mut result.logs {
        n += scrub_str(&mut line.message, &secrets);
        n += scrub_value(&mut line.fields, &secrets);
    }
    match &mut result.outcome {
        StepOutcome::Ok { output, .. } => n += scrub_value(std::sync::Arc::make_mut(output), &secrets),
        StepOutcome::Failed { error } => n += scrub_str(&mut error.message, &secrets),
    }
    n
}

fn scrub_str(s: &mut String, secrets: &[&(String, String)]) -> usize {
    let mut n = 0;
    for (name, value) in secrets {
        let found = s.matches(value.as_str()).count();
        if found > 0 {
            *s = s.replace(value.as_str(), &format!("[secret:{name}]"));
            n += found;
        }
    }
    n
}

fn scrub_value(v: &mut Value, secrets: &[&(String, String)]) -> usize {
    match v {
        Value::String(s) => scrub_str(s, secrets),
        Value::Array(items) => items.iter_mut().map(|i| scrub_value(i, secrets)).sum(),
        Value::Object(map) => {
            let mut n = 0;
            // Keys can carry a value too (`{"sk_live_…": true}`): rebuild the map when one does.
            if map.keys().any(|k| secrets.iter().any(|(_, value)| k.contains(value.as_str()))) {
                let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
                for (mut k, v) in entries {
                    n += scrub_str(&mut k, secrets);
                    map.insert(k, v);
                }
            }
            n + map.values_mut().map(|i| scrub_value(i, secrets)).sum::<usize>()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_concepts::step::{AttemptKey, LogLevel, LogLine, StepError, StepErrorCode};
    use serde_json::json;

    fn result(outcome: StepOutcome, logs: Vec<LogLine>) -> StepResult {
        StepResult {
            key: AttemptKey { run_id: uuid::Uuid::nil(), step: "s".into(), attempt: 1 },
            outcome,
            usage: Default::default(),
            logs,
            worker: "w".into(),
        }
    }

    #[test]
    fn a_secret_value_is_cut_from_logs_output_and_errors() {
        let secrets = vec![("STRIPE".to_string(), "sk_live_abc123".to_string()), ("PIN".to_string(), "42".to_string())];
        let mut r = result(
            StepOutcome::Ok {
                output:
                    json!({"key": "sk_live_abc123", "nested": ["Bearer sk_live_abc123"], "sk_live_abc123": 1, "n": 42})
                        .into(),
                next: None,
            },
            vec![LogLine {
                level: LogLevel::Info,
                message: "calling with sk_live_abc123".into(),
                fields: json!({"auth": "sk_live_abc123"}),
            }],
        );
        assert_eq!(scrub(&mut r, &secrets), 5);
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("sk_live_abc123"), "{text}");
        assert!(text.contains("[secret:STRIPE]"), "{text}");
        assert!(text.contains("42"), "too short to redact: {text}");

        let mut failed = result(
            StepOutcome::Failed { error: StepError::permanent(StepErrorCode::Trap, "bad key sk_live_abc123") },
            vec![],
        );
        scrub(&mut failed, &secrets);
        let StepOutcome::Failed { error } = &failed.outcome else { unreachable!() };
        assert_eq!(error.message, "bad key [secret:STRIPE]");
    }

    #[test]
    fn only_secret_grants_name_secrets() {
        let caps = ["records:read", "secret:STRIPE", "http:api.stripe.com", "secret:SLACK"].map(String::from);
        assert_eq!(granted(&caps), ["STRIPE", "SLACK"]);
    }
}
