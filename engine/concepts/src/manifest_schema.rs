//! The JSON Schema of `workflow.toml`, derived from the manifest types (schemars), for
//! editors: `crm workflow new` writes it beside each scaffold and its `workflow.toml` points
//! at it (`#:schema ./.crm/workflow.schema.json`, read by Taplo / Even Better TOML).
//! `crm workflow schema` prints it. What the schema cannot say (a cron expression's
//! fields, a dependency cycle, a template's paths) `crm workflow validate` reports with
//! the field's path.

use serde_json::Value;

use crate::manifest::Manifest;

pub fn workflow_schema() -> Value {
    let mut schema = schemars::schema_for!(Manifest).to_value();
    if let Value::Object(m) = &mut schema {
        m.insert("title".into(), Value::String("crm workflow manifest (workflow.toml)".into()));
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema knows every trigger kind and step field, keeps serde's defaults, and
    /// refuses unknown keys as the parser does.
    #[test]
    fn describes_the_manifest_as_the_parser_reads_it() {
        let s = workflow_schema().to_string();
        for needle in
            ["\"bot_command\"", "\"cron\"", "\"record_event\"", "\"webhook\"", "\"capabilities\"", "\"needs\""]
        {
            assert!(s.contains(needle), "{needle} missing from {s}");
        }
        assert!(s.contains("\"additionalProperties\":false"), "{s}");
        assert!(s.contains("\"UTC\""), "the cron trigger's default time zone: {s}");
        let schema = workflow_schema();
        assert_eq!(schema["required"], serde_json::json!(["name", "version", "steps"]));
    }
}
