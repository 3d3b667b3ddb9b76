//! Bad input gets the documented error (status, code, field) and leaves nothing behind:
//! no record, no activity, no outbox event.

use std::time::Duration;

use crm_testing::http::answered_within;
use crm_testing::{TestStack, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// No row was written by anything the test sent since `baseline`.
async fn assert_nothing_written(s: &TestStack, baseline: (i64, i64, i64)) {
    let now = (
        s.count("SELECT count(*) FROM contacts").await + s.count("SELECT count(*) FROM deals").await,
        s.count("SELECT count(*) FROM activity").await,
        s.count("SELECT count(*) FROM outbox").await,
    );
    assert_eq!(now, baseline, "(records, activity, outbox) changed");
}

async fn baseline(s: &TestStack) -> (i64, i64, i64) {
    (
        s.count("SELECT count(*) FROM contacts").await + s.count("SELECT count(*) FROM deals").await,
        s.count("SELECT count(*) FROM activity").await,
        s.count("SELECT count(*) FROM outbox").await,
    )
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

#[tokio::test]
async fn malformed_json_and_unknown_fields_are_bad_requests() {
    let s = TestStack::start("bad_json").await;
    let before = baseline(&s).await;

    let raw = |body: &'static str| {
        s.request(Method::POST, "/api/contacts").header("content-type", "application/json").body(body)
    };
    let (st, body) = send(raw(r#"{"name": "Ann""#)).await;
    assert_eq!((st, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    let (st, body) = send(raw(r#"{"name": 42}"#)).await;
    assert_eq!((st, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("invalid type"), "{body}");

    let (st, body) = s.post("/api/contacts", json!({"name": "Ann", "nmae": "typo"})).await;
    assert_eq!((st, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown field `nmae`"), "{body}");

    let (st, body) = s.post("/api/deals", json!({"title": "X", "status": "won"})).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "status follows the stage, it is not input"
    );

    let (st, body) = send(s.request(Method::POST, "/api/contacts").body(r#"{"name": "No content type"}"#)).await;
    assert_eq!((st, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));

    assert_nothing_written(&s, before).await;
}

#[tokio::test]
async fn invalid_values_fail_validation_naming_the_field() {
    let s = TestStack::start("bad_values").await;
    let (_, ann) = s.post("/api/contacts", json!({"name": "Ann Lee", "email": "ann@example.com"})).await;
    let (_, deal) = s.post("/api/deals", json!({"title": "Pilot"})).await;
    let (_, other) = s.post("/api/pipelines", json!({"name": "Hiring", "stages": [{"name": "Applied"}]})).await;
    let foreign_stage = other["stages"][0]["id"].as_i64().unwrap();
    let before = baseline(&s).await;

    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("POST", "/api/contacts", json!({"name": "Bad", "email": "not-an-email"}), "email"),
        ("POST", "/api/contacts", json!({"name": "   "}), "name"),
        ("POST", "/api/contacts", json!({"name": "Bad", "company_id": 999999}), "company_id"),
        ("POST", "/api/contacts", json!({"name": "Bad", "phone": "call me maybe"}), "phone"),
        ("PATCH", "/api/contacts/{ann}", json!({"email": "ann@@example.com"}), "email"),
        ("POST", "/api/deals", json!({"title": "Bad", "amount_minor": -100}), "amount_minor"),
        ("POST", "/api/deals", json!({"title": "Bad", "currency": "dollars"}), "currency"),
        ("POST", "/api/deals", json!({"title": "Bad", "pipeline_id": 1, "stage_id": foreign_stage}), "stage_id"),
        ("PATCH", "/api/deals/{deal}", json!({"stage_id": foreign_stage}), "stage_id"),
        ("POST", "/api/deals/{deal}/move", json!({"stage_id": foreign_stage}), "stage_id"),
        ("POST", "/api/deals/{deal}/move", json!({"stage_id": 999999}), "stage_id"),
        ("PATCH", "/api/deals/{deal}", json!({"amount_minor": -1}), "amount_minor"),
        ("POST", "/api/tasks", json!({"title": "Bad", "contact_id": 1, "deal_id": 1}), "contact_id"),
        ("POST", "/api/notes", json!({"body": "Orphan"}), "contact_id"),
        ("POST", "/api/pipelines", json!({"name": "Empty", "stages": []}), "stages"),
    ];
    for (method, path, body, field) in cases {
        let path = path.replace("{ann}", &ann["id"].to_string()).replace("{deal}", &deal["id"].to_string());
        let (st, resp) = send(s.request(method.parse().unwrap(), &path).json(&body)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path} {body}: {resp}");
        assert_eq!(code(&resp), "validation_failed");
        assert_eq!(resp["error"]["fields"][0]["field"], field, "{method} {path} {body}: {resp}");
    }

    let (st, dup) = s.post("/api/contacts", json!({"name": "Ann Two", "email": "ANN@example.com"})).await;
    assert_eq!((st, code(&dup)), (StatusCode::CONFLICT, "conflict"));

    let (_, still) = s.get(&format!("/api/deals/{}", deal["id"])).await;
    assert_eq!(still, deal, "the failed changes left the deal as it was");
    assert_nothing_written(&s, before).await;
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let s = TestStack::start("bad_size").await;
    let before = baseline(&s).await;
    let huge = json!({"name": "Big", "custom": {"blob": "x".repeat(2 * 1024 * 1024)}});
    let (st, body) = s.post("/api/contacts", huge).await;
    assert_eq!((st, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    assert_nothing_written(&s, before).await;
}

#[tokio::test]
async fn sql_metacharacters_and_emoji_are_stored_verbatim() {
    let s = TestStack::start("bad_verbatim").await;
    let nasty = "Robert'); DROP TABLE contacts;-- \\ % _ \" 🦀 Zoë Ñandú 漢字";
    let (st, c) = s
        .post(
            "/api/contacts",
            json!({"name": nasty, "tags": ["'; --", "🙂"], "custom": {"q": "' OR 1=1 --", "🔑": [1, "💥"]}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let (_, got) = s.get(&format!("/api/contacts/{}", c["id"])).await;
    assert_eq!(got["name"], nasty);
    assert_eq!(got["tags"], json!(["'; --", "🙂"]));
    assert_eq!(got["custom"], json!({"q": "' OR 1=1 --", "🔑": [1, "💥"]}));
    let stored: String = sqlx::query_scalar("SELECT name FROM contacts").fetch_one(&s.db.pool).await.unwrap();
    assert_eq!(stored, nasty);

    for q in ["'; DROP TABLE contacts;--", "%", "_", "\\", "🦀"] {
        let (st, _) = send(s.request(Method::GET, "/api/search").query(&[("q", q)])).await;
        assert_eq!(st, StatusCode::OK, "search {q:?}");
        let (st, _) = send(s.request(Method::GET, "/api/contacts").query(&[("q", q), ("tag", q)])).await;
        assert_eq!(st, StatusCode::OK, "list {q:?}");
    }
    let (_, found) = send(s.request(Method::GET, "/api/search").query(&[("q", "Robert DROP TABLE")])).await;
    assert_eq!(found["items"][0]["title"], nasty);
    assert_eq!(s.count("SELECT count(*) FROM contacts").await, 1, "the table survived");
}

#[tokio::test]
async fn missing_or_wrong_token_is_unauthorized() {
    let s = TestStack::start("bad_auth").await;
    let before = baseline(&s).await;
    let url = format!("{}/api/contacts", s.url);
    let body = json!({"name": "Sneaky"});
    for req in [
        s.client.post(&url).json(&body),
        s.client.post(&url).bearer_auth("crm_not-a-real-token").json(&body),
        s.client.post(&url).bearer_auth("").json(&body),
        s.client.post(&url).header("authorization", format!("Basic {}", s.admin_token)).json(&body),
        s.client.get(&url),
    ] {
        let (st, resp) = send(req).await;
        assert_eq!((st, code(&resp)), (StatusCode::UNAUTHORIZED, "unauthorized"), "{resp}");
    }
    // a token revoked by another process (here the test's) stops working as soon as the
    // engine hears of it from Postgres
    let (token, secret) = crm_store::tokens::create(&s.db, s.manager_id, "short-lived").await.unwrap();
    let (st, _) = send(s.request_as(&secret, Method::GET, "/api/me")).await;
    assert_eq!(st, StatusCode::OK);
    crm_store::tokens::revoke(&s.db, token.id).await.unwrap();
    let st = answered_within(Duration::from_secs(2), StatusCode::UNAUTHORIZED, || {
        s.request_as(&secret, Method::GET, "/api/me")
    })
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_nothing_written(&s, before).await;
}

#[tokio::test]
async fn viewers_cannot_write() {
    let s = TestStack::start("bad_viewer").await;
    let (_, c) = s.post("/api/contacts", json!({"name": "Ann"})).await;
    let (_, d) = s.post("/api/deals", json!({"title": "Pilot"})).await;
    let (_, t) = s.post("/api/tasks", json!({"title": "Call"})).await;
    let before = baseline(&s).await;
    let v = &s.viewer_token;
    let writes = [
        s.request_as(v, Method::POST, "/api/contacts").json(&json!({"name": "X"})),
        // a viewer is refused before the body is even read
        s.request_as(v, Method::POST, "/api/contacts").body("{not json"),
        s.request_as(v, Method::PATCH, &format!("/api/contacts/{}", c["id"])).json(&json!({"name": "X"})),
        s.request_as(v, Method::DELETE, &format!("/api/contacts/{}", c["id"])),
        s.request_as(v, Method::POST, &format!("/api/deals/{}/move", d["id"])).json(&json!({"stage_id": 2})),
        s.request_as(v, Method::POST, &format!("/api/tasks/{}/complete", t["id"])),
        s.request_as(v, Method::POST, "/api/pipelines").json(&json!({"name": "P", "stages": [{"name": "S"}]})),
        s.request_as(v, Method::POST, "/api/users").json(&json!({"name": "U", "role": "admin"})),
    ];
    for req in writes {
        let (st, resp) = send(req).await;
        assert_eq!((st, code(&resp)), (StatusCode::FORBIDDEN, "forbidden"), "{resp}");
    }
    let (st, list) = send(s.request_as(v, Method::GET, "/api/contacts")).await;
    assert_eq!((st, list["items"].as_array().unwrap().len()), (StatusCode::OK, 1), "viewers read");
    assert_nothing_written(&s, before).await;
}

#[tokio::test]
async fn bad_queries_paths_and_routes() {
    let s = TestStack::start("bad_query").await;
    for path in [
        "/api/contacts?limit=0",
        "/api/contacts?limit=201",
        "/api/contacts?limit=ten",
        "/api/contacts?sort=shoe_size",
        "/api/contacts?cursor=garbage!",
        "/api/contacts?colour=blue",
        "/api/contacts/abc",
        "/api/deals?status=maybe",
        "/api/tasks?due_before=tomorrow",
        "/api/search",
        "/api/search?q=%20",
        "/api/activity?record_kind=planet&record_id=1",
    ] {
        let (st, body) = s.get(path).await;
        assert_eq!((st, code(&body)), (StatusCode::BAD_REQUEST, "bad_request"), "{path}: {body}");
    }
    // a cursor for one sort does not page another
    for i in 0..3 {
        s.post("/api/contacts", json!({"name": format!("P{i}")})).await;
    }
    let (_, page) = s.get("/api/contacts?limit=1&sort=name").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (st, _) = s.get(&format!("/api/contacts?limit=1&sort=-created_at&cursor={cursor}")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (st, body) = s.get("/api/no-such-thing").await;
    assert_eq!((st, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (st, body) = s.get("/api/contacts/424242").await;
    assert_eq!((st, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (st, body) = s.patch("/api/contacts/424242", json!({"name": "X"})).await;
    assert_eq!((st, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
}
