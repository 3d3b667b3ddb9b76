//! The small text template a manifest uses to render a run's result for a chat:
//! `{{path.to.value}}` looks a value up in a JSON context; strings are inserted as they
//! are, other values as compact JSON, missing values as nothing. No logic, no loops: a
//! template that needs them belongs in a step that composes the message.

use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = src;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| TemplateError(format!("unclosed `{{{{` at byte {}", src.len() - rest.len() + open)))?;
            let expr = after[..close].trim();
            let path: Vec<String> = expr.split('.').map(|s| s.trim().to_string()).collect();
            if expr.is_empty()
                || path
                    .iter()
                    .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            {
                return Err(TemplateError(format!(
                    "`{{{{{expr}}}}}` is not a variable path such as {{{{steps.score.output}}}}"
                )));
            }
            parts.push(Part::Var(path));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Every variable path the template uses, for validation.
    pub fn paths(&self) -> Vec<Vec<String>> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Var(v) => Some(v.clone()),
                Part::Text(_) => None,
            })
            .collect()
    }

    pub fn render(&self, context: &impl Lookup) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(path) => match context.lookup(path).as_deref() {
                    Some(serde_json::Value::String(s)) => out.push_str(s),
                    Some(serde_json::Value::Null) | None => {}
                    Some(other) => out.push_str(&other.to_string()),
                },
            }
        }
        out
    }
}

/// What a template's variables are looked up in. A JSON value is one; a caller whose
/// context is spread over its own types resolves paths itself, so that rendering a few
/// variables does not first copy everything they might name into one JSON tree.
pub trait Lookup {
    /// The value at `path`, or `None` when there is none.
    fn lookup(&self, path: &[String]) -> Option<Cow<'_, serde_json::Value>>;
}

impl Lookup for serde_json::Value {
    fn lookup(&self, path: &[String]) -> Option<Cow<'_, serde_json::Value>> {
        walk(self, path).map(Cow::Borrowed)
    }
}

/// The value at `path` inside `value`: object keys, and array indexes as numbers.
pub fn walk<'a>(value: &'a serde_json::Value, path: &[String]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(value, |v, seg| match v {
        serde_json::Value::Object(m) => m.get(seg),
        serde_json::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_paths_strings_numbers_and_missing_values() {
        let t = Template::parse(
            "Lead {{input.name}} scored {{ steps.score.output.score }}/100{{nothing.here}}; tags {{input.tags.1}}",
        )
        .unwrap();
        let ctx = json!({"input": {"name": "Ann", "tags": ["a", "b"]}, "steps": {"score": {"output": {"score": 87}}}});
        assert_eq!(t.render(&ctx), "Lead Ann scored 87/100; tags b");
        assert_eq!(t.paths()[1], vec!["steps", "score", "output", "score"]);
    }

    #[test]
    fn rejects_malformed_templates() {
        assert!(Template::parse("oops {{input").unwrap_err().to_string().contains("unclosed"));
        assert!(Template::parse("{{ }}").is_err());
        assert!(Template::parse("{{a..b}}").is_err());
        assert!(Template::parse("{{a b}}").is_err());
    }
}
