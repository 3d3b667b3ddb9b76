//! Every record kind round-trips through the HTTP API of a real `crm serve`: create, read,
//! update, list (filters, sort, cursor pages), delete; deals move between stages and close;
//! tasks complete; search forgives misspellings; activity tells the history.

use crm_testing::{TestStack, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

#[tokio::test]
async fn contacts_and_companies_round_trip() {
    let s = TestStack::start("rt_contacts").await;
    let (st, acme) = s
        .post("/api/companies", json!({"name": "Acme Logistics Ltd", "domain": "acme.example", "tags": ["partner"]}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let (st, ann) = s
        .post(
            "/api/contacts",
            json!({"name": "Ann Lee", "email": "ann@acme.example", "phone": "+1 555 010 2030",
                   "company_id": id(&acme), "owner_id": s.manager_id, "tags": ["vip"], "custom": {"source": "fair"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ann}");
    assert_eq!(ann["name"], "Ann Lee");
    assert_eq!(ann["custom"], json!({"source": "fair"}));

    let (st, got) = s.get(&format!("/api/contacts/{}", id(&ann))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(got, ann);

    // absent fields stay, null clears
    let (st, changed) =
        s.patch(&format!("/api/contacts/{}", id(&ann)), json!({"phone": null, "tags": ["vip", "lead"]})).await;
    assert_eq!(st, StatusCode::OK, "{changed}");
    assert_eq!(changed["phone"], Value::Null);
    assert_eq!(changed["email"], "ann@acme.example");
    assert_eq!(changed["tags"], json!(["vip", "lead"]));

    let (_, bob) = s.post("/api/contacts", json!({"name": "Bob Stone", "company_id": id(&acme)})).await;
    let (_, _cy) = s.post("/api/contacts", json!({"name": "Cy Young"})).await;

    let (st, by_company) = s.get(&format!("/api/contacts?company_id={}&sort=name", id(&acme))).await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<&str> =
        by_company["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ann Lee", "Bob Stone"]);
    let (_, tagged) = s.get("/api/contacts?tag=lead").await;
    assert_eq!(tagged["items"].as_array().unwrap().len(), 1);
    let (_, fuzzy) = s.get("/api/contacts?q=bob%20stoen").await;
    assert_eq!(fuzzy["items"][0]["id"], bob["id"], "{fuzzy}");

    // company round trip
    let (st, acme2) = s.patch(&format!("/api/companies/{}", id(&acme)), json!({"domain": "acme.io"})).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(acme2["domain"], "acme.io");
    let (_, companies) = s.get("/api/companies").await;
    assert_eq!(companies["items"].as_array().unwrap().len(), 1);

    let (st, body) = s.delete(&format!("/api/contacts/{}", id(&bob))).await;
    assert_eq!((st, body), (StatusCode::NO_CONTENT, Value::Null));
    let (st, gone) = s.get(&format!("/api/contacts/{}", id(&bob))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(gone["error"]["code"], "not_found");
    let (st, _) = s.delete(&format!("/api/companies/{}", id(&acme))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn cursor_pages_cover_every_row_once() {
    let s = TestStack::start("rt_pages").await;
    for i in 0..7 {
        let (st, _) = s.post("/api/contacts", json!({"name": format!("Person {i:02}")})).await;
        assert_eq!(st, StatusCode::CREATED);
    }
    for sort in ["name", "-name", "created_at", "-created_at", "id"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/contacts?limit=3&sort={sort}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (st, page) = s.get(&path).await;
            assert_eq!(st, StatusCode::OK, "{page}");
            seen.extend(page["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..7).map(|i| format!("Person {i:02}")).collect();
        if sort == "-name" || sort == "-created_at" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "sort {sort}");
    }
}

#[tokio::test]
async fn deals_move_through_stages_and_close() {
    let s = TestStack::start("rt_deals").await;
    let (_, pipelines) = s.get("/api/pipelines").await;
    let sales = &pipelines["items"][0];
    let stages = sales["stages"].as_array().unwrap();
    let stage = |name: &str| stages.iter().find(|st| st["name"] == name).map(id).unwrap();
    assert_eq!(stages.len(), 6);

    let (_, ann) = s.post("/api/contacts", json!({"name": "Ann Lee"})).await;
    let (st, deal) = s
        .post("/api/deals", json!({"title": "Acme pilot", "amount_minor": 1_250_000, "contact_id": id(&ann), "expected_close": "2026-12-31"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{deal}");
    assert_eq!(deal["stage_id"], json!(stage("Lead")), "starts in the first stage");
    assert_eq!(deal["currency"], "USD");
    assert_eq!(deal["status"], "open");

    let (st, moved) = s.post(&format!("/api/deals/{}/move", id(&deal)), json!({"stage_id": stage("Proposal")})).await;
    assert_eq!(st, StatusCode::OK, "{moved}");
    assert_eq!(moved["stage_id"], json!(stage("Proposal")));
    assert_eq!(moved["status"], "open");

    let (_, won) = s.post(&format!("/api/deals/{}/move", id(&deal)), json!({"stage_id": stage("Won")})).await;
    assert_eq!(won["status"], "won");
    assert!(won["closed_at"].is_string());
    let (_, reopened) = s.patch(&format!("/api/deals/{}", id(&deal)), json!({"stage_id": stage("Negotiation")})).await;
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened["closed_at"], Value::Null);

    // a second pipeline: its stages are not the deal's
    let (st, renewals) = s
        .post(
            "/api/pipelines",
            json!({"name": "Renewals", "stages": [{"name": "Due"}, {"name": "Renewed", "kind": "won"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{renewals}");
    let renewed = id(&renewals["stages"][1]);
    let (st, r) = s.get(&format!("/api/pipelines/{}", id(&renewals))).await;
    assert_eq!((st, r["stages"].as_array().unwrap().len()), (StatusCode::OK, 2));
    // moving pipelines with an explicit stage of the new one is fine
    let (st, switched) =
        s.patch(&format!("/api/deals/{}", id(&deal)), json!({"pipeline_id": id(&renewals), "stage_id": renewed})).await;
    assert_eq!(st, StatusCode::OK, "{switched}");
    assert_eq!(switched["status"], "won");

    let (_, open_deals) = s.get("/api/deals?status=open").await;
    assert_eq!(open_deals["items"].as_array().unwrap().len(), 0);
    let (_, by_contact) = s.get(&format!("/api/deals?contact_id={}&sort=-amount_minor", id(&ann))).await;
    assert_eq!(by_contact["items"].as_array().unwrap().len(), 1);

    let (_, history) = s.get(&format!("/api/activity?record_kind=deal&record_id={}", id(&deal))).await;
    let actions: Vec<&str> =
        history["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["updated", "updated", "moved", "moved", "created"], "newest first");
    assert_eq!(history["items"][0]["actor_id"], json!(s.admin_id));

    let (st, _) = s.delete(&format!("/api/deals/{}", id(&deal))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn tasks_and_notes_round_trip() {
    let s = TestStack::start("rt_tasks").await;
    let (_, deal) = s.post("/api/deals", json!({"title": "Globex renewal"})).await;
    let (st, task) = s
        .post("/api/tasks", json!({"title": "Call back", "due_at": "2026-12-01T09:00:00Z", "assignee_id": s.manager_id, "deal_id": id(&deal)}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{task}");
    assert_eq!(task["done"], false);
    let (_, later) = s.post("/api/tasks", json!({"title": "Send contract", "due_at": "2026-12-05T09:00:00Z"})).await;

    let (_, due) = s.get("/api/tasks?due_before=2026-12-02T00:00:00Z&done=false").await;
    assert_eq!(due["items"].as_array().unwrap().iter().map(id).collect::<Vec<_>>(), [id(&task)]);
    let (_, sorted) = s.get("/api/tasks?sort=due_at").await;
    assert_eq!(sorted["items"].as_array().unwrap().iter().map(id).collect::<Vec<_>>(), [id(&task), id(&later)]);

    let (st, done) = s.post(&format!("/api/tasks/{}/complete", id(&task)), json!({})).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["done"], true);
    assert!(done["done_at"].is_string());
    let (_, again) = s.post(&format!("/api/tasks/{}/complete", id(&task)), json!({})).await;
    assert_eq!(again["done_at"], done["done_at"], "completing twice changes nothing");
    let (_, reopened) =
        s.patch(&format!("/api/tasks/{}", id(&task)), json!({"done": false, "title": "Call back again"})).await;
    assert_eq!((reopened["done"].clone(), reopened["done_at"].clone()), (json!(false), Value::Null));

    let (st, note) = s.post("/api/notes", json!({"body": "Prefers email.", "deal_id": id(&deal)})).await;
    assert_eq!(st, StatusCode::CREATED, "{note}");
    assert_eq!(note["author_id"], json!(s.admin_id));
    let (_, edited) = s.patch(&format!("/api/notes/{}", id(&note)), json!({"body": "Prefers email, not calls."})).await;
    assert_eq!(edited["body"], "Prefers email, not calls.");
    let (_, notes) = s.get(&format!("/api/notes?deal_id={}", id(&deal))).await;
    assert_eq!(notes["items"].as_array().unwrap().len(), 1);
    let (st, _) = s.delete(&format!("/api/notes/{}", id(&note))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.delete(&format!("/api/tasks/{}", id(&task))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.get(&format!("/api/tasks/{}", id(&task))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn search_forgives_misspellings() {
    let s = TestStack::start("rt_search").await;
    let (_, ann) =
        s.post("/api/contacts", json!({"name": "Annabel Leeworth", "email": "annabel@northwind.example"})).await;
    let (_, company) = s.post("/api/companies", json!({"name": "Northwind Traders"})).await;
    let (_, deal) = s.post("/api/deals", json!({"title": "Northwind expansion"})).await;
    s.post("/api/contacts", json!({"name": "Zed Quark"})).await;

    let (st, found) = s.get("/api/search?q=anabel%20leworth").await;
    assert_eq!(st, StatusCode::OK, "{found}");
    assert_eq!(found["items"][0]["kind"], "contact");
    assert_eq!(found["items"][0]["id"], ann["id"]);
    assert_eq!(found["items"][0]["title"], "Annabel Leeworth");

    let (_, nw) = s.get("/api/search?q=nortwind").await;
    let kinds: Vec<(&str, i64)> =
        nw["items"].as_array().unwrap().iter().map(|h| (h["kind"].as_str().unwrap(), id(h))).collect();
    assert!(kinds.contains(&("company", id(&company))), "{nw}");
    assert!(kinds.contains(&("deal", id(&deal))), "{nw}");

    let (_, only_deals) = s.get("/api/search?q=nortwind&kinds=deals&limit=5").await;
    assert!(only_deals["items"].as_array().unwrap().iter().all(|h| h["kind"] == "deal"));
    let (st, bad) = s.get("/api/search?q=x&kinds=planets").await;
    assert_eq!((st, bad["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
}

#[tokio::test]
async fn users_roles_and_acting_user() {
    let s = TestStack::start("rt_users").await;
    let (st, me) = s.get("/api/me").await;
    assert_eq!((st, me["role"].as_str()), (StatusCode::OK, Some("admin")));

    let (st, bot_user) =
        s.post("/api/users", json!({"name": "Chat User", "role": "viewer", "telegram_user_id": 777001})).await;
    assert_eq!(st, StatusCode::CREATED, "{bot_user}");
    let (st, linked) = s.get("/api/users/by-telegram/777001").await;
    assert_eq!((st, linked["id"].clone()), (StatusCode::OK, bot_user["id"].clone()));
    let (st, _) = s.get("/api/users/by-telegram/1").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // an admin token acting for a viewer has the viewer's rights
    let acting = |m: Method, p: &str| s.request(m, p).header("X-Crm-Acting-User", id(&bot_user).to_string());
    let (st, me) = send(acting(Method::GET, "/api/me")).await;
    assert_eq!((st, me["id"].clone()), (StatusCode::OK, bot_user["id"].clone()));
    let (st, err) = send(acting(Method::POST, "/api/contacts").json(&json!({"name": "X"}))).await;
    assert_eq!((st, err["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));

    // acting for the manager writes as the manager
    let (st, c) = send(
        s.request(Method::POST, "/api/contacts")
            .header("X-Crm-Acting-User", s.manager_id.to_string())
            .json(&json!({"name": "Via Bot"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, history) = s.get(&format!("/api/activity?record_kind=contact&record_id={}", id(&c))).await;
    assert_eq!(history["items"][0]["actor_id"], json!(s.manager_id));

    // only admin tokens may act for others, and only admins manage users
    let (st, _) = send(
        s.request_as(&s.manager_token, Method::GET, "/api/me").header("X-Crm-Acting-User", s.admin_id.to_string()),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) =
        send(s.request_as(&s.manager_token, Method::POST, "/api/users").json(&json!({"name": "Y", "role": "admin"})))
            .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, users) = send(s.request_as(&s.viewer_token, Method::GET, "/api/users")).await;
    assert_eq!((st, users["items"].as_array().unwrap().len()), (StatusCode::OK, 4));
}

#[tokio::test]
async fn health_readiness_and_openapi() {
    let s = TestStack::start("rt_health").await;
    let (st, h) = send(s.client.get(format!("{}/healthz", s.url))).await;
    assert_eq!((st, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (st, r) = send(s.client.get(format!("{}/readyz", s.url))).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    // what is wrong (or right) with each dependency is for the log, not for anyone who asks
    assert_eq!(r, json!({"status": "ready"}));

    let (st, doc) = send(s.client.get(format!("{}/api/openapi.json", s.url))).await;
    assert_eq!(st, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("get", "/api/contacts"),
        ("post", "/api/contacts"),
        ("patch", "/api/contacts/{id}"),
        ("delete", "/api/companies/{id}"),
        ("post", "/api/pipelines"),
        ("post", "/api/deals/{id}/move"),
        ("post", "/api/tasks/{id}/complete"),
        ("get", "/api/notes"),
        ("get", "/api/search"),
        ("get", "/api/activity"),
        ("patch", "/api/fields/{kind}/{key}"),
        ("get", "/api/users/by-telegram/{telegram_user_id}"),
        ("get", "/readyz"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
}
