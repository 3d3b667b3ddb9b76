//! `/api/openapi.json`: the OpenAPI 3.1 document of every route. Built from the tables
//! below rather than derived, so other route groups add their operations by adding rows
//! to [`OPERATIONS`] and, if they introduce new bodies, to [`schemas`].

use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::extract::Json;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(|| async { Json(document()) }))
}

/// One operation: method, path, tag, summary, request body schema, success status and
/// response schema (`Page<X>` lists get `items` + `next_cursor`), and query parameters.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub request: Option<&'static str>,
    pub status: u16,
    pub response: Option<&'static str>,
    pub query: &'static [(&'static str, &'static str)],
}

const PAGE: [(&str, &str); 3] = [("limit", "integer"), ("cursor", "string"), ("sort", "string")];

macro_rules! op {
    ($m:literal, $p:literal, $t:literal, $s:literal, $req:expr, $st:literal, $resp:expr, $q:expr) => {
        Operation { method: $m, path: $p, tag: $t, summary: $s, request: $req, status: $st, response: $resp, query: $q }
    };
}

pub const OPERATIONS: &[Operation] = &[
    op!("get", "/healthz", "health", "The process is up", None, 200, None, &[]),
    op!("get", "/readyz", "health", "Postgres and Redis are reachable", None, 200, None, &[]),
    op!("get", "/api/openapi.json", "health", "This document", None, 200, None, &[]),
    op!(
        "get",
        "/api/contacts",
        "contacts",
        "List contacts",
        None,
        200,
        Some("Page<Contact>"),
        &[
            ("limit", "integer"),
            ("cursor", "string"),
            ("sort", "string"),
            ("owner_id", "integer"),
            ("company_id", "integer"),
            ("tag", "string"),
            ("q", "string")
        ]
    ),
    op!("post", "/api/contacts", "contacts", "Create a contact", Some("NewContact"), 201, Some("Contact"), &[]),
    op!("get", "/api/contacts/{id}", "contacts", "Read a contact", None, 200, Some("Contact"), &[]),
    op!(
        "patch",
        "/api/contacts/{id}",
        "contacts",
        "Change a contact (null clears a field)",
        Some("ContactPatch"),
        200,
        Some("Contact"),
        &[]
    ),
    op!("delete", "/api/contacts/{id}", "contacts", "Delete a contact", None, 204, None, &[]),
    op!(
        "get",
        "/api/companies",
        "companies",
        "List companies",
        None,
        200,
        Some("Page<Company>"),
        &[
            ("limit", "integer"),
            ("cursor", "string"),
            ("sort", "string"),
            ("owner_id", "integer"),
            ("tag", "string"),
            ("q", "string")
        ]
    ),
    op!("post", "/api/companies", "companies", "Create a company", Some("NewCompany"), 201, Some("Company"), &[]),
    op!("get", "/api/companies/{id}", "companies", "Read a company", None, 200, Some("Company"), &[]),
    op!(
        "patch",
        "/api/companies/{id}",
        "companies",
        "Change a company",
        Some("CompanyPatch"),
        200,
        Some("Company"),
        &[]
    ),
    op!("delete", "/api/companies/{id}", "companies", "Delete a company", None, 204, None, &[]),
    op!(
        "get",
        "/api/pipelines",
        "pipelines",
        "List pipelines with their stages",
        None,
        200,
        Some("Page<Pipeline>"),
        &[]
    ),
    op!(
        "post",
        "/api/pipelines",
        "pipelines",
        "Create a pipeline with ordered stages",
        Some("NewPipeline"),
        201,
        Some("Pipeline"),
        &[]
    ),
    op!("get", "/api/pipelines/{id}", "pipelines", "Read a pipeline", None, 200, Some("Pipeline"), &[]),
    op!(
        "get",
        "/api/deals",
        "deals",
        "List deals",
        None,
        200,
        Some("Page<Deal>"),
        &[
            ("limit", "integer"),
            ("cursor", "string"),
            ("sort", "string"),
            ("pipeline_id", "integer"),
            ("stage_id", "integer"),
            ("status", "string"),
            ("owner_id", "integer"),
            ("contact_id", "integer"),
            ("company_id", "integer"),
            ("q", "string")
        ]
    ),
    op!("post", "/api/deals", "deals", "Create a deal", Some("NewDeal"), 201, Some("Deal"), &[]),
    op!("get", "/api/deals/{id}", "deals", "Read a deal", None, 200, Some("Deal"), &[]),
    op!("patch", "/api/deals/{id}", "deals", "Change a deal", Some("DealPatch"), 200, Some("Deal"), &[]),
    op!("delete", "/api/deals/{id}", "deals", "Delete a deal", None, 204, None, &[]),
    op!(
        "post",
        "/api/deals/{id}/move",
        "deals",
        "Move a deal to another stage of its pipeline",
        Some("MoveDeal"),
        200,
        Some("Deal"),
        &[]
    ),
    op!(
        "get",
        "/api/tasks",
        "tasks",
        "List tasks",
        None,
        200,
        Some("Page<Task>"),
        &[
            ("limit", "integer"),
            ("cursor", "string"),
            ("sort", "string"),
            ("assignee_id", "integer"),
            ("done", "boolean"),
            ("due_before", "string"),
            ("deal_id", "integer"),
            ("contact_id", "integer"),
            ("company_id", "integer")
        ]
    ),
    op!("post", "/api/tasks", "tasks", "Create a task", Some("NewTask"), 201, Some("Task"), &[]),
    op!("get", "/api/tasks/{id}", "tasks", "Read a task", None, 200, Some("Task"), &[]),
    op!("patch", "/api/tasks/{id}", "tasks", "Change a task", Some("TaskPatch"), 200, Some("Task"), &[]),
    op!("delete", "/api/tasks/{id}", "tasks", "Delete a task", None, 204, None, &[]),
    op!("post", "/api/tasks/{id}/complete", "tasks", "Complete a task", None, 200, Some("Task"), &[]),
    op!(
        "get",
        "/api/notes",
        "notes",
        "List notes",
        None,
        200,
        Some("Page<Note>"),
        &[
            ("limit", "integer"),
            ("cursor", "string"),
            ("sort", "string"),
            ("contact_id", "integer"),
            ("company_id", "integer"),
            ("deal_id", "integer"),
            ("task_id", "integer")
        ]
    ),
    op!("post", "/api/notes", "notes", "Create a note on one record", Some("NewNote"), 201, Some("Note"), &[]),
    op!("get", "/api/notes/{id}", "notes", "Read a note", None, 200, Some("Note"), &[]),
    op!("patch", "/api/notes/{id}", "notes", "Change a note", Some("NotePatch"), 200, Some("Note"), &[]),
    op!("delete", "/api/notes/{id}", "notes", "Delete a note", None, 204, None, &[]),
    op!(
        "get",
        "/api/search",
        "search",
        "Fuzzy search across contacts, companies and deals",
        None,
        200,
        Some("SearchHits"),
        &[("q", "string"), ("kinds", "string"), ("limit", "integer")]
    ),
    op!(
        "get",
        "/api/activity",
        "search",
        "The change history of one record",
        None,
        200,
        Some("Page<Activity>"),
        &[("record_kind", "string"), ("record_id", "integer"), ("limit", "integer"), ("cursor", "string")]
    ),
    op!("get", "/api/me", "users", "The calling (or acting) user", None, 200, Some("User"), &[]),
    op!("get", "/api/users", "users", "List users", None, 200, Some("Page<User>"), &PAGE),
    op!("post", "/api/users", "users", "Create a user (admin)", Some("NewUser"), 201, Some("User"), &[]),
    op!(
        "get",
        "/api/users/by-telegram/{telegram_user_id}",
        "users",
        "The user linked to a Telegram account (admin)",
        None,
        200,
        Some("User"),
        &[]
    ),
    op!(
        "get",
        "/api/schedules",
        "triggers",
        "Cron schedules of the deployed workflows with their next fire times",
        None,
        200,
        None,
        &[("next", "integer"), ("all", "boolean")]
    ),
    op!(
        "post",
        "/hooks/{path}",
        "triggers",
        "Inbound webhook: a JSON body signed with X-Crm-Timestamp and X-Crm-Signature: sha256=HMAC(secret, timestamp + \".\" + body); starts one run",
        None,
        202,
        None,
        &[]
    ),
    op!(
        "post",
        "/api/webhook-secrets/{name}",
        "triggers",
        "Set or rotate a webhook secret (admin); body {\"secret\"} optional, shown once",
        None,
        200,
        None,
        &[]
    ),
    op!(
        "post",
        "/api/runs",
        "runs",
        "Start a workflow run (202, queued); idempotent with idempotency_key",
        None,
        202,
        None,
        &[]
    ),
    op!("get", "/api/runs", "runs", "List runs", None, 200, None, &[]),
    op!("get", "/api/runs/{id}", "runs", "A run with its steps", None, 200, None, &[]),
    op!("post", "/api/runs/{id}/cancel", "runs", "Cancel a run", None, 200, None, &[]),
    op!("get", "/api/runs/{id}/events", "runs", "Server-sent events of one run", None, 200, None, &[]),
    op!(
        "get",
        "/api/completions",
        "runs",
        "Server-sent events of finished runs for the bot; resumable with Last-Event-ID",
        None,
        200,
        None,
        &[]
    ),
    op!("get", "/api/scheduler/metrics", "runs", "Scheduler counters", None, 200, None, &[]),
    op!(
        "get",
        "/api/notifications",
        "notifications",
        "Chat notifications and their delivery status",
        None,
        200,
        None,
        &[]
    ),
    op!(
        "get",
        "/api/notifications/stream",
        "notifications",
        "Server-sent events of pending notifications for the bot",
        None,
        200,
        None,
        &[]
    ),
    op!("get", "/api/notifications/{id}", "notifications", "One notification", None, 200, None, &[]),
    op!(
        "post",
        "/api/notifications/{id}/delivered",
        "notifications",
        "Report a notification delivered",
        None,
        200,
        None,
        &[]
    ),
    op!(
        "post",
        "/api/notifications/{id}/undeliverable",
        "notifications",
        "Report a notification undeliverable, with a reason",
        None,
        200,
        None,
        &[]
    ),
    op!("post", "/api/workflows", "workflows", "Deploy a workflow (manifest and components)", None, 201, None, &[]),
    op!(
        "get",
        "/api/workflows",
        "workflows",
        "Deployed workflows with their triggers and bot commands",
        None,
        200,
        None,
        &[]
    ),
    op!("get", "/api/workflows/{name}", "workflows", "One workflow", None, 200, None, &[]),
    op!(
        "post",
        "/api/workflows/{name}/disable",
        "workflows",
        "Stop starting new runs of a workflow",
        None,
        200,
        None,
        &[]
    ),
    op!("post", "/api/workflows/{name}/enable", "workflows", "Start runs of a workflow again", None, 200, None, &[]),
    op!("post", "/api/workflows/{name}/rollback", "workflows", "Make an earlier version current", None, 200, None, &[]),
    op!("post", "/api/invites", "users", "Create an invite to link a Telegram account (admin)", None, 201, None, &[]),
    op!("get", "/api/invites", "users", "List invites (admin)", None, 200, None, &[]),
    op!("post", "/api/invites/redeem", "users", "Redeem an invite", None, 200, None, &[]),
];

fn schema_ref(name: &str) -> Value {
    match name.strip_prefix("Page<").and_then(|n| n.strip_suffix('>')) {
        Some(item) => json!({
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
                "next_cursor": {"type": ["string", "null"], "description": "pass as `cursor` for the next page"}
            }
        }),
        None => json!({"$ref": format!("#/components/schemas/{name}")}),
    }
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut params: Vec<Value> = path_params(op.path)
            .map(|p| {
                // record ids are integers; runs are UUIDs; workflow names and hook paths text
                let schema = match p {
                    "id" if op.path.starts_with("/api/runs/") => {
                        json!({"type": "string", "format": "uuid"})
                    }
                    "id" | "telegram_user_id" => json!({"type": "integer", "format": "int64"}),
                    _ => json!({"type": "string"}),
                };
                json!({"name": p, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        params.extend(
            op.query.iter().map(|(n, t)| json!({"name": n, "in": "query", "required": false, "schema": {"type": t}})),
        );
        let mut responses = Map::new();
        let ok = match op.response {
            Some(r) => {
                json!({"description": "success", "content": {"application/json": {"schema": schema_ref(r)}}})
            }
            None => json!({"description": "success"}),
        };
        responses.insert(op.status.to_string(), ok);
        if op.path.starts_with("/api/") && op.path != "/api/openapi.json" {
            for (code, what) in [
                ("400", "malformed request"),
                ("401", "missing or invalid token"),
                ("403", "the role does not allow this"),
                ("404", "no such record"),
                ("409", "conflicts with existing data"),
                ("413", "body too large"),
                ("422", "validation failed"),
            ] {
                responses.insert(
                    code.into(),
                    json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
                );
            }
        }
        let mut operation = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "parameters": params,
            "responses": responses,
        });
        if let Some(req) = op.request {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema_ref(req)}}});
        }
        if op.path.starts_with("/api/") && op.path != "/api/openapi.json" {
            operation["security"] = json!([{"bearer": []}]);
        }
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "crm engine API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "a token from `crm token create`; admin tokens may add X-Crm-Acting-User"}},
            "schemas": schemas(),
        }
    })
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// `(name, type)` where a trailing `?` makes the property nullable and optional in input.
fn object(fields: &[(&str, &str)], required: &[&str]) -> Value {
    let mut props = Map::new();
    for (name, ty) in fields {
        let (ty, nullable) = match ty.strip_suffix('?') {
            Some(t) => (t, true),
            None => (*ty, false),
        };
        let mut schema = match ty {
            "id" => json!({"type": "integer", "format": "int64"}),
            "time" => json!({"type": "string", "format": "date-time"}),
            "date" => json!({"type": "string", "format": "date"}),
            "tags" => json!({"type": "array", "items": {"type": "string"}}),
            "custom" => json!({"type": "object", "additionalProperties": true}),
            "json" => json!({}),
            t if t.starts_with('#') => json!({"$ref": format!("#/components/schemas/{}", &t[1..])}),
            t if t.starts_with('[') => {
                json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{}", &t[1..t.len() - 1])}})
            }
            t if t.contains('|') => {
                json!({"type": "string", "enum": t.split('|').collect::<Vec<_>>()})
            }
            t => json!({"type": t}),
        };
        if nullable {
            schema = json!({"anyOf": [schema, {"type": "null"}]});
        }
        props.insert(name.to_string(), schema);
    }
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

pub fn schemas() -> Map<String, Value> {
    let company = [
        ("name", "string"),
        ("domain", "string?"),
        ("phone", "string?"),
        ("owner_id", "id?"),
        ("tags", "tags"),
        ("custom", "custom"),
    ];
    let contact = [
        ("name", "string"),
        ("email", "string?"),
        ("phone", "string?"),
        ("company_id", "id?"),
        ("owner_id", "id?"),
        ("tags", "tags"),
        ("custom", "custom"),
    ];
    let deal_in = [
        ("title", "string"),
        ("amount_minor", "integer"),
        ("currency", "string"),
        ("pipeline_id", "id"),
        ("stage_id", "id"),
        ("contact_id", "id?"),
        ("company_id", "id?"),
        ("owner_id", "id?"),
        ("expected_close", "date?"),
        ("tags", "tags"),
        ("custom", "custom"),
    ];
    let task_in = [
        ("title", "string"),
        ("due_at", "time?"),
        ("assignee_id", "id?"),
        ("contact_id", "id?"),
        ("company_id", "id?"),
        ("deal_id", "id?"),
    ];
    let note_links = [("contact_id", "id?"), ("company_id", "id?"), ("deal_id", "id?"), ("task_id", "id?")];
    let stamps = [("id", "id"), ("created_at", "time"), ("updated_at", "time")];
    let with = |base: &[(&'static str, &'static str)], extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let names = |fields: &[(&'static str, &'static str)]| fields.iter().map(|f| f.0).collect::<Vec<_>>();

    let mut s = Map::new();
    let company_out = with(&stamps, &company);
    s.insert("Company".into(), object(&company_out, &names(&company_out)));
    s.insert("NewCompany".into(), object(&company, &["name"]));
    s.insert("CompanyPatch".into(), object(&company, &[]));
    let contact_out = with(&stamps, &contact);
    s.insert("Contact".into(), object(&contact_out, &names(&contact_out)));
    s.insert("NewContact".into(), object(&contact, &["name"]));
    s.insert("ContactPatch".into(), object(&contact, &[]));
    let deal_out = with(
        &stamps,
        &with(&deal_in, &[("status", "open|won|lost"), ("closed_at", "time?"), ("stage_changed_at", "time")]),
    );
    s.insert("Deal".into(), object(&deal_out, &names(&deal_out)));
    s.insert("NewDeal".into(), object(&deal_in, &["title"]));
    s.insert("DealPatch".into(), object(&deal_in, &[]));
    s.insert("MoveDeal".into(), object(&[("stage_id", "id")], &["stage_id"]));
    let task_out = with(&stamps, &with(&task_in, &[("done", "boolean"), ("done_at", "time?")]));
    s.insert("Task".into(), object(&task_out, &names(&task_out)));
    s.insert("NewTask".into(), object(&task_in, &["title"]));
    s.insert("TaskPatch".into(), object(&with(&task_in, &[("done", "boolean")]), &[]));
    let note_in = with(&[("body", "string")], &note_links);
    let note_out = with(&stamps, &with(&note_in, &[("author_id", "id?")]));
    s.insert("Note".into(), object(&note_out, &names(&note_out)));
    s.insert("NewNote".into(), object(&note_in, &["body"]));
    s.insert("NotePatch".into(), object(&[("body", "string")], &[]));
    let stage =
        [("id", "id"), ("pipeline_id", "id"), ("name", "string"), ("position", "integer"), ("kind", "open|won|lost")];
    s.insert("Stage".into(), object(&stage, &names(&stage)));
    let pipeline = [("id", "id"), ("name", "string"), ("created_at", "time"), ("stages", "[Stage]")];
    s.insert("Pipeline".into(), object(&pipeline, &names(&pipeline)));
    s.insert("NewStage".into(), object(&[("name", "string"), ("kind", "open|won|lost")], &["name"]));
    s.insert("NewPipeline".into(), object(&[("name", "string"), ("stages", "[NewStage]")], &["name", "stages"]));
    let user_in =
        [("name", "string"), ("email", "string?"), ("role", "admin|manager|viewer"), ("telegram_user_id", "integer?")];
    let user_out = with(&[("id", "id"), ("created_at", "time"), ("disabled_at", "time?")], &user_in);
    s.insert("User".into(), object(&user_out, &names(&user_out)));
    s.insert("NewUser".into(), object(&user_in, &["name", "role"]));
    let hit = [
        ("kind", "contact|company|deal"),
        ("id", "id"),
        ("title", "string"),
        ("subtitle", "string?"),
        ("score", "number"),
    ];
    s.insert("SearchHit".into(), object(&hit, &names(&hit)));
    s.insert("SearchHits".into(), object(&[("items", "[SearchHit]")], &["items"]));
    let activity = [
        ("id", "id"),
        ("at", "time"),
        ("actor_id", "id?"),
        ("origin_run", "string?"),
        ("record_kind", "string"),
        ("record_id", "id"),
        ("action", "string"),
        ("before", "json"),
        ("after", "json"),
    ];
    s.insert("Activity".into(), object(&activity, &names(&activity)));
    s.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": ["bad_request", "unauthorized", "forbidden", "not_found", "conflict",
                                                        "payload_too_large", "validation_failed", "internal", "unavailable", "timeout"]},
                    "message": {"type": "string"},
                    "fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}
                }
            }}
        }),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path registered with `.route("…")` in a route module is documented: the
    /// document is hand-built, so this is what keeps it complete.
    #[test]
    fn every_route_is_documented() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, _) in text.match_indices(".route(") {
                let rest = text[i + ".route(".len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let route = &rest[..rest.find('"').unwrap()];
                if !route.starts_with('/') {
                    continue;
                }
                assert!(paths.contains_key(route), "{route} (in {}) is missing from OPERATIONS", path.display());
                checked += 1;
            }
        }
        assert!(checked > 30, "found only {checked} routes: is the scan still right?");
    }

    #[test]
    fn every_referenced_schema_exists() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "missing schema {name}");
        }
    }
}
