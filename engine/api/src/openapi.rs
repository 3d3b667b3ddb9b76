//! The OpenAPI document. Nothing here lists routes or fields: each handler's
//! `#[utoipa::path]` describes its operation, the `ToSchema` types it takes and answers with
//! describe the bodies, and [`crate::routes::all`] collects both as it mounts the routes, so
//! a route cannot be served without being described.

use bytes::Bytes;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "crm engine API",
        description = "CRM records, search, users, workflows and their runs. Every error has the shape \
                       `{\"error\": {\"code\", \"message\", \"fields\"}}`; lists are cursor-paginated.",
    ),
    modifiers(&BearerToken),
    // Named by response groups (`CallerErrors`, …), which do not collect their bodies.
    components(schemas(ErrorBody)),
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "a token from `crm token create`; an admin token may add `X-Crm-Acting-User: <user id>` to act as \
                 that user (whose role then applies)",
            ))
            .build();
        api.components.get_or_insert_default().add_security_scheme("bearer", SecurityScheme::Http(scheme));
        let worker = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "a worker credential from `crm worker credential create` (`crmw_…`): the workers' channel only; \
                 it is not a user and opens no other route",
            ))
            .build();
        api.components.get_or_insert_default().add_security_scheme("worker", SecurityScheme::Http(worker));
    }
}

/// What the routes add their operations to.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served.
pub fn to_json(api: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(api).expect("an OpenAPI document serializes");
    inline_primitive_components(&mut doc);
    doc
}

/// The serialized document, shared by every request for it.
#[derive(Debug, Clone)]
pub struct Document(pub Bytes);

impl Document {
    pub fn new(api: &utoipa::openapi::OpenApi) -> Document {
        Document(Bytes::from(to_json(api).to_string()))
    }
}

/// Components that `ToSchema` registers for the primitive behind a type alias.
const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "String", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128",
    "usize", "f32", "f64",
];

/// A field typed with an alias (`Id` for `i64`, `Digest` for `String`) comes out as a `$ref`
/// to a component named after the primitive, since a derive cannot see through the alias.
/// The document says `{"type": "integer", "format": "int64"}` in place instead.
fn inline_primitive_components(doc: &mut Value) {
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return;
    };
    let primitives: Vec<(String, Value)> = PRIMITIVES
        .iter()
        .filter_map(|name| schemas.remove(*name).map(|schema| (format!("#/components/schemas/{name}"), schema)))
        .collect();
    replace_refs(doc, &primitives);
}

fn replace_refs(value: &mut Value, inlined: &[(String, Value)]) {
    match value {
        Value::Object(map) => {
            let target = map.get("$ref").and_then(Value::as_str);
            if let Some((_, schema)) = target.and_then(|t| inlined.iter().find(|(r, _)| r == t)) {
                // A field's doc comment sits beside the `$ref`; it stays.
                let mut merged = schema.clone();
                if let Value::Object(fields) = &mut merged {
                    fields.extend(map.iter().filter(|(k, _)| *k != "$ref").map(|(k, v)| (k.clone(), v.clone())));
                }
                *value = merged;
                return;
            }
            map.values_mut().for_each(|v| replace_refs(v, inlined));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_refs(v, inlined)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use serde_json::Value;
    use tower::ServiceExt;

    use crate::AppState;

    fn document() -> Value {
        super::to_json(&crate::routes::all().into_openapi())
    }

    fn collect_refs<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
        match value {
            Value::Object(map) => {
                if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                    out.push(target);
                }
                map.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn is_an_openapi_3_document_whose_references_all_resolve() {
        let doc = document();
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(refs.len() > 100, "only {} references: is the walk still right?", refs.len());
        for target in refs {
            let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("{target} is not a local reference"));
            assert!(pointer.starts_with("/components/"), "{target} points outside the components");
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
        let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}: no responses");
                for requirement in op["security"].as_array().into_iter().flatten() {
                    for scheme in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(scheme), "{method} {path}: unknown security scheme {scheme}");
                    }
                }
            }
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut seen = HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                assert!(seen.insert(id.to_string()), "operationId {id} is used twice");
            }
        }
    }

    #[test]
    fn primitives_behind_aliases_are_inlined() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in super::PRIMITIVES {
            assert!(!schemas.contains_key(*name), "component {name} should have been inlined");
        }
        assert_eq!(schemas["Contact"]["properties"]["id"], serde_json::json!({"type": "integer", "format": "int64"}));
        let about = &schemas["Task"]["properties"]["contact_id"]["oneOf"][1];
        assert_eq!(
            (&about["type"], &about["description"]),
            (&"integer".into(), &"the one record the task is about, if any".into())
        );
    }

    /// The paths the router matches. axum has no API that lists them, but its `Debug` shows
    /// the path table (`RouteId(3): "/api/openapi.json"`); the caller checks the result is
    /// not empty, so a change of that format fails this test rather than passing it.
    fn routed_paths(router: &axum::Router) -> BTreeSet<String> {
        let text = format!("{router:?}");
        let mut paths = BTreeSet::new();
        for (i, _) in text.match_indices("RouteId(") {
            let rest = &text[i..];
            let Some(start) = rest.find("): \"").map(|p| p + 4) else { continue };
            let Some(len) = rest[start..].find('"') else { continue };
            let path = &rest[start..start + len];
            // axum's own catch-all for the fallback
            if path.starts_with('/') && !path.contains("__private__axum") && path != "/" {
                paths.insert(path.to_string());
            }
        }
        paths
    }

    /// Every method the real router answers on every one of its paths is an operation in
    /// the document, and every operation in the document is routed. A method is routed when
    /// the answer is anything but the router's 405 (a handler answers 401 before it reads a
    /// path parameter it does not like, so `1` stands in for each).
    #[tokio::test]
    async fn every_route_is_documented() {
        let router = crate::router(AppState::unreachable());
        let paths = routed_paths(&router);
        assert!(paths.len() > 40 && paths.contains("/healthz"), "found only {paths:?}: is the scan still right?");

        let mut routed = BTreeSet::new();
        for path in &paths {
            let uri: String =
                path.split('/').map(|seg| if seg.starts_with('{') { "1" } else { seg }).collect::<Vec<_>>().join("/");
            for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                let request = Request::builder().method(method.clone()).uri(&uri).body(Body::empty()).unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                if response.status() != StatusCode::METHOD_NOT_ALLOWED {
                    routed.insert((method.as_str().to_lowercase(), path.clone()));
                }
            }
        }

        let doc = document();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        assert!(undocumented.is_empty(), "routed but missing from the OpenAPI document: {undocumented:?}");
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(unrouted.is_empty(), "in the OpenAPI document but not routed: {unrouted:?}");
    }
}
