//! Typed custom fields: admins define them per kind of record (`POST /api/fields`, `crm
//! field add`) and change their label, required flag and choices (`PATCH
//! /api/fields/{kind}/{key}`, `crm field change`) once no record is in the way; every write of a record's `custom` object is checked against them (the
//! API, CSV import and workflow steps alike) and refused whole, with the field named, when
//! a value has the wrong type, a choice is not offered or a required field is missing;
//! lists filter on them with `?field.KEY=VALUE`; CSV exports carry one column per field,
//! which imports read back; keys nobody defined stay free-form JSON.

use std::time::{Duration, Instant};

use crm_testing::{Flow, TestStack, send};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn crm(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = crm_testing::process::crm()
        .args(args)
        .env("CRM_DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run crm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn define(s: &TestStack, body: Value) -> Value {
    let (st, v) = s.post("/api/fields", body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

/// The contact fields most tests use: a required choice, a number, money, a date, yes/no.
async fn contact_fields(s: &TestStack) {
    define(
        s,
        json!({"kind": "contact", "key": "tier", "label": "Tier", "type": "choice",
                     "choices": ["gold", "silver"], "required": true}),
    )
    .await;
    define(s, json!({"kind": "contact", "key": "score", "label": "Score", "type": "number"})).await;
    define(s, json!({"kind": "contact", "key": "budget", "label": "Budget", "type": "money"})).await;
    define(s, json!({"kind": "contact", "key": "renewal", "label": "Renewal", "type": "date"})).await;
    define(s, json!({"kind": "contact", "key": "newsletter", "label": "Newsletter", "type": "yes_no"})).await;
}

#[tokio::test]
async fn admins_define_fields_through_the_api_and_the_cli_and_no_one_else_can() {
    let s = TestStack::start("fields_define").await;
    let tier = define(
        &s,
        json!({"kind": "contact", "key": "tier", "label": "Tier", "type": "choice", "choices": ["gold", "silver"]}),
    )
    .await;
    assert_eq!(tier["type"], "choice");
    assert_eq!(tier["required"], false);

    // A manager and a viewer may read the definitions but not make or remove them.
    let body = json!({"kind": "deal", "key": "region", "label": "Region", "type": "text"});
    let (st, err) = send(s.request_as(&s.manager_token, Method::POST, "/api/fields").json(&body)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{err}");
    let (st, _) = send(s.request_as(&s.manager_token, Method::DELETE, "/api/fields/contact/tier")).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, list) = send(s.request_as(&s.viewer_token, Method::GET, "/api/fields?kind=contact")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["items"][0]["key"], "tier", "{list}");

    // A bad definition is refused with the field named; a key is defined once per kind.
    let (st, err) = s.post("/api/fields", json!({"kind": "deal", "key": "tier", "label": "T", "type": "choice"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err.to_string().contains("choices"), "{err}");
    let (st, err) =
        s.post("/api/fields", json!({"kind": "deal", "key": "Lead Source", "label": "T", "type": "text"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (st, err) = s.post("/api/fields", json!({"kind": "note", "key": "x", "label": "X", "type": "text"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (st, err) =
        s.post("/api/fields", json!({"kind": "contact", "key": "tier", "label": "Tier", "type": "text"})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{err}");

    // The command line: add, list, remove.
    let (ok, out, err) = crm(
        &s.db_url,
        &[
            "field",
            "add",
            "--kind",
            "deal",
            "--key",
            "priority",
            "--label",
            "Priority",
            "--type",
            "choice",
            "--choices",
            "high,low",
            "--required",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("deal\tpriority\tPriority\tchoice (high, low)\trequired"), "{out}");
    let (ok, _, err) = crm(&s.db_url, &["field", "add", "--kind", "deal", "--key", "priority", "--type", "text"]);
    assert!(!ok && err.contains("already"), "{err}");
    let (ok, _, err) = crm(&s.db_url, &["field", "add", "--kind", "deal", "--key", "size", "--type", "huge"]);
    assert!(!ok && err.contains("expected text, number, money, date, choice or yes_no"), "{err}");
    let (_, list) = s.get("/api/fields?kind=deal").await;
    assert_eq!(list["items"][0]["choices"], json!(["high", "low"]), "{list}");
    let (ok, out, _) = crm(&s.db_url, &["field", "list"]);
    assert!(ok && out.contains("contact\ttier") && out.contains("deal\tpriority"), "{out}");
    let (ok, _, err) = crm(&s.db_url, &["field", "remove", "--kind", "deal", "priority"]);
    assert!(ok, "{err}");
    let (_, list) = s.get("/api/fields?kind=deal").await;
    assert_eq!(list["items"], json!([]));

    let (st, ann) = s.post("/api/contacts", json!({"name": "Ann Lee", "custom": {"tier": "gold"}})).await;
    assert_eq!(st, StatusCode::CREATED, "{ann}");
    let (st, removed) = s.delete("/api/fields/contact/tier").await;
    assert_eq!(st, StatusCode::OK, "{removed}");
    let (st, _) = s.delete("/api/fields/contact/tier").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Records keep their values, which are free-form again.
    let (_, still) = s.get(&format!("/api/contacts/{}", ann["id"])).await;
    assert_eq!(still["custom"], json!({"tier": "gold"}));
    let (st, bronze) = s.post("/api/contacts", json!({"name": "Bob Stone", "custom": {"tier": "bronze"}})).await;
    assert_eq!(st, StatusCode::CREATED, "{bronze}");
}

#[tokio::test]
async fn admins_change_a_definition_once_no_record_is_in_the_way_and_never_its_type() {
    let s = TestStack::start("fields_change").await;
    define(
        &s,
        json!({"kind": "contact", "key": "tier", "label": "Tier", "type": "choice",
               "choices": ["gold", "silver", "bronze"]}),
    )
    .await;
    define(&s, json!({"kind": "contact", "key": "score", "label": "Score", "type": "number"})).await;
    let mut ids = Vec::new();
    for (name, custom) in [
        ("Ann Lee", json!({"tier": "gold", "score": 1})),
        ("Bob Stone", json!({"score": 2})),
        ("Cy Young", json!({"tier": "bronze"})),
    ] {
        let (st, c) = s.post("/api/contacts", json!({"name": name, "custom": custom})).await;
        assert_eq!(st, StatusCode::CREATED, "{c}");
        ids.push(c["id"].as_i64().expect("id"));
    }
    let (bob, cy) = (ids[1], ids[2]);

    // A new field cannot start out required while records lack it.
    let (st, err) = s
        .post(
            "/api/fields",
            json!({"kind": "contact", "key": "region", "label": "Region", "type": "text", "required": true}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{err}");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        message,
        format!("3 contacts lack Region (#{}, #{bob}, #{cy}): give them a value first, then make it required", ids[0])
    );
    let (_, defined) = s.get("/api/fields?kind=contact").await;
    assert!(!defined.to_string().contains("region"), "a refused definition is not kept: {defined}");

    // The label changes; what the body leaves out stays.
    let (st, tier) = s.patch("/api/fields/contact/tier", json!({"label": "Level"})).await;
    assert_eq!(st, StatusCode::OK, "{tier}");
    assert_eq!(
        (&tier["label"], &tier["type"], &tier["required"], &tier["choices"]),
        (&json!("Level"), &json!("choice"), &json!(false), &json!(["gold", "silver", "bronze"]))
    );

    // Managers may not change a definition.
    let (st, err) =
        send(s.request_as(&s.manager_token, Method::PATCH, "/api/fields/contact/tier").json(&json!({"label": "X"})))
            .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{err}");

    // Required is refused while a record lacks the field, naming how many and which.
    let (_, before) = s.get("/api/fields?kind=contact").await;
    let (st, err) = s.patch("/api/fields/contact/tier", json!({"required": true})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{err}");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(message, format!("1 contact lacks Level (#{bob}): give it a value first, then make it required"));
    // A dropped choice is refused while a record holds it.
    let (st, err) = s.patch("/api/fields/contact/tier", json!({"choices": ["gold", "silver"]})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{err}");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("1 contact still holds Level “bronze” (#{cy})")), "{message}");
    // The type never changes: remove and add is the way.
    let (st, err) = s.patch("/api/fields/contact/tier", json!({"type": "text", "label": "Tier"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["fields"][0]["field"], "type", "{err}");
    assert!(err.to_string().contains("cannot change") && err.to_string().contains("remove the field"), "{err}");
    let (st, err) = s.patch("/api/fields/contact/tier", json!({"key": "level"})).await;
    assert!(st.is_client_error(), "{st} {err}");
    let (st, _) = s.patch("/api/fields/contact/nope", json!({"label": "Nope"})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, after) = s.get("/api/fields?kind=contact").await;
    assert_eq!(after, before, "a refused change changes nothing");

    // Once the records are put right, both changes go through.
    let (st, c) = s.patch(&format!("/api/contacts/{bob}"), json!({"custom": {"tier": "silver"}})).await;
    assert_eq!(st, StatusCode::OK, "{c}");
    let (st, c) = s.patch(&format!("/api/contacts/{cy}"), json!({"custom": {"tier": "gold"}})).await;
    assert_eq!(st, StatusCode::OK, "{c}");
    let (st, tier) =
        s.patch("/api/fields/contact/tier", json!({"required": true, "choices": ["gold", "silver"]})).await;
    assert_eq!(st, StatusCode::OK, "{tier}");
    assert_eq!((&tier["required"], &tier["choices"]), (&json!(true), &json!(["gold", "silver"])));
    let (st, err) = s.post("/api/contacts", json!({"name": "Dee Park", "custom": {"tier": "bronze"}})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "the new definition holds: {err}");
    // A record in the trash is not in the way.
    let (st, eve) = s.post("/api/contacts", json!({"name": "Eve Park", "custom": {"tier": "gold"}})).await;
    assert_eq!(st, StatusCode::CREATED, "{eve}");
    let (st, _) = s.delete(&format!("/api/contacts/{}", eve["id"])).await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    // The command line: the same rules, the same messages.
    let (ok, _, err) = crm(&s.db_url, &["field", "change", "--kind", "contact", "score", "--required"]);
    assert!(!ok && err.contains(&format!("1 contact lacks Score (#{cy})")), "{err}");
    let (ok, _, err) = crm(&s.db_url, &["field", "change", "--kind", "contact", "tier", "--type", "text"]);
    assert!(!ok && err.contains("the type of a field cannot change"), "{err}");
    let (ok, _, err) = crm(&s.db_url, &["field", "change", "--kind", "contact", "tier"]);
    assert!(!ok && err.contains("nothing to change"), "{err}");
    let (ok, out, err) =
        crm(&s.db_url, &["field", "change", "--kind", "contact", "tier", "--label", "Tier", "--optional"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "contact\ttier\tTier\tchoice (gold, silver)");
    let (ok, out, err) =
        crm(&s.db_url, &["field", "change", "--kind", "contact", "tier", "--choices", "gold,silver,tin", "--required"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "contact\ttier\tTier\tchoice (gold, silver, tin)\trequired");
    let (_, list) = s.get("/api/fields?kind=contact").await;
    assert_eq!(list["items"][0]["choices"], json!(["gold", "silver", "tin"]), "{list}");
}

#[tokio::test]
async fn a_wrong_value_is_refused_whole_and_a_right_one_is_stored_typed() {
    let s = TestStack::start("fields_write").await;
    // Written before any definition: stays as it is, and stays readable.
    let (st, old) = s.post("/api/contacts", json!({"name": "Old Otto", "custom": {"tier": "platinum"}})).await;
    assert_eq!(st, StatusCode::CREATED, "{old}");
    contact_fields(&s).await;

    let refused = [
        (json!({"tier": "bronze"}), "custom.tier", "Tier must be one of gold, silver"),
        (json!({"score": 5}), "custom.tier", "Tier is required"),
        (json!({"tier": "gold", "score": "high"}), "custom.score", "Score must be a number"),
        (json!({"tier": "gold", "budget": "lots"}), "custom.budget", "Budget"),
        (json!({"tier": "gold", "renewal": "2026-02-30"}), "custom.renewal", "Renewal must be a date"),
        (json!({"tier": "gold", "newsletter": "maybe"}), "custom.newsletter", "Newsletter must be true or false"),
    ];
    for (custom, field, message) in refused {
        let (st, err) = s.post("/api/contacts", json!({"name": "Ann Lee", "custom": custom})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{custom}: {err}");
        assert_eq!(err["error"]["fields"][0]["field"], field, "{err}");
        assert!(err["error"]["fields"][0]["message"].as_str().unwrap_or_default().contains(message), "{err}");
    }
    assert_eq!(s.count("SELECT count(*) FROM contacts").await, 1, "nothing but Otto was written");

    let (st, ann) = s
        .post(
            "/api/contacts",
            json!({"name": "Ann Lee", "custom": {"tier": "gold", "score": 42, "budget": "1 500.50 EUR",
                   "renewal": "2026-12-01", "newsletter": true, "source": {"fair": "Hannover"}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ann}");
    assert_eq!(ann["custom"]["budget"], json!({"amount_minor": 150_050, "currency": "EUR"}));
    assert_eq!(ann["custom"]["source"], json!({"fair": "Hannover"}), "a free-form key stays free-form");
    let path = format!("/api/contacts/{}", ann["id"]);

    // A change merges its `custom` keys into the record's (null removes one); the result is
    // checked the same way, and a refused change changes nothing.
    let (st, err) = s.patch(&path, json!({"name": "Ann B. Lee", "custom": {"tier": null}})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err.to_string().contains("Tier is required"), "{err}");
    let (st, err) = s.patch(&path, json!({"name": "Ann B. Lee", "custom": {"score": "many"}})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (_, now) = s.get(&path).await;
    assert_eq!(now, ann);
    let (st, changed) = s.patch(&path, json!({"custom": {"score": 43}})).await;
    assert_eq!(st, StatusCode::OK, "{changed}");
    assert_eq!((changed["custom"]["score"].as_i64(), &changed["custom"]["tier"]), (Some(43), &json!("gold")));
    assert_eq!(changed["custom"]["source"], json!({"fair": "Hannover"}), "{changed}");
    // A change that leaves `custom` alone is not held up by it, even on an older record.
    let (st, otto) = s.patch(&format!("/api/contacts/{}", old["id"]), json!({"name": "Otto Old"})).await;
    assert_eq!(st, StatusCode::OK, "{otto}");
    assert_eq!(otto["custom"], json!({"tier": "platinum"}));
    // Null clears an optional field.
    let (st, changed) = s.patch(&path, json!({"custom": {"score": null}})).await;
    assert_eq!(st, StatusCode::OK, "{changed}");
    assert!(changed["custom"].get("score").is_none(), "{changed}");
    assert_eq!(changed["custom"]["tier"], "gold");
    // Money may be sent as stored, too.
    let (st, _) = s
        .post(
            "/api/contacts",
            json!({"name": "Bob Stone", "custom": {"tier": "silver", "score": 7,
              "budget": {"amount_minor": 1500, "currency": "JPY"}, "source": "fair"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);

    // CSV import meets the same rules: the bad row is reported by line, the good one written.
    let csv = "name,custom\nCy Young,\"{\"\"tier\"\": \"\"gold\"\"}\"\nDi Bad,\"{\"\"tier\"\": \"\"tin\"\"}\"\n";
    let (st, report) =
        send(s.request(Method::POST, "/api/import/contacts").header("content-type", "text/csv").body(csv.to_string()))
            .await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["rejected"][0]["line"], 3, "{report}");
    assert!(report["rejected"][0]["reason"].as_str().unwrap_or_default().contains("Tier must be one of"), "{report}");

    // A `custom.KEY` column (as an export writes it) is read by the field's type.
    let csv = "name,custom.tier,custom.budget,custom.newsletter\nEve Park,gold,2000 EUR,yes\nFay Tin,tin,,\n";
    let (st, report) =
        send(s.request(Method::POST, "/api/import/contacts").header("content-type", "text/csv").body(csv.to_string()))
            .await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!((report["created"].as_i64(), report["ignored_columns"].clone()), (Some(1), json!([])), "{report}");
    assert_eq!(report["rejected"][0]["line"], 3, "{report}");
    assert!(
        report["rejected"][0]["reason"].as_str().unwrap_or_default().contains("custom.tier: Tier must be one of"),
        "{report}"
    );
    let (_, eve) = s.get("/api/contacts?q=Eve%20Park").await;
    assert_eq!(
        eve["items"][0]["custom"],
        json!({"tier": "gold", "budget": {"amount_minor": 200_000, "currency": "EUR"}, "newsletter": true}),
        "{eve}"
    );
}

#[tokio::test]
async fn lists_filter_on_custom_fields_and_exports_carry_them() {
    let s = TestStack::start("fields_lists").await;
    contact_fields(&s).await;
    for (name, custom) in [
        (
            "Ann Lee",
            json!({"tier": "gold", "score": 42, "budget": "1500.50 EUR", "newsletter": true, "source": "fair"}),
        ),
        ("Bob Stone", json!({"tier": "silver", "score": 7, "newsletter": false, "source": "web"})),
        ("Cy Young", json!({"tier": "gold", "score": 7.5})),
    ] {
        let (st, v) = s.post("/api/contacts", json!({"name": name, "custom": custom})).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .map(|a| a.iter().map(|c| c["name"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    };
    let (st, gold) = s.get("/api/contacts?field.tier=gold&sort=name").await;
    assert_eq!(st, StatusCode::OK, "{gold}");
    assert_eq!(names(&gold), ["Ann Lee", "Cy Young"]);
    let (_, both) = s.get("/api/contacts?field.tier=gold&field.newsletter=yes").await;
    assert_eq!(names(&both), ["Ann Lee"]);
    let (_, score) = s.get("/api/contacts?field.score=42.0").await;
    assert_eq!(names(&score), ["Ann Lee"], "numbers compare as numbers");
    let (_, money) = s.get("/api/contacts?field.budget=1500.50%20EUR").await;
    assert_eq!(names(&money), ["Ann Lee"]);
    let (_, web) = s.get("/api/contacts?field.source=web").await;
    assert_eq!(names(&web), ["Bob Stone"], "a free-form key matches its text");
    let (st, err) = s.get("/api/contacts?field.tier=bronze").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{err}");
    assert!(err.to_string().contains("field.tier: Tier must be one of gold, silver"), "{err}");
    let (st, err) = s.get("/api/contacts?tier=gold").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "other unknown parameters are still refused: {err}");

    // Deals filter too.
    define(&s, json!({"kind": "deal", "key": "region", "label": "Region", "type": "text"})).await;
    let (st, deal) = s.post("/api/deals", json!({"title": "Acme rollout", "custom": {"region": "EMEA"}})).await;
    assert_eq!(st, StatusCode::CREATED, "{deal}");
    let (_, emea) = s.get("/api/deals?field.region=EMEA").await;
    assert_eq!(emea["items"][0]["id"], deal["id"], "{emea}");
    let (_, apac) = s.get("/api/deals?field.region=APAC").await;
    assert_eq!(apac["items"], json!([]));

    // Companies and tasks too.
    define(&s, json!({"kind": "company", "key": "partner", "label": "Partner", "type": "yes_no"})).await;
    define(&s, json!({"kind": "task", "key": "effort", "label": "Effort", "type": "number"})).await;
    let (st, acme) = s.post("/api/companies", json!({"name": "Acme", "custom": {"partner": true}})).await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let (_, partners) = s.get("/api/companies?field.partner=yes").await;
    assert_eq!(partners["items"][0]["id"], acme["id"], "{partners}");
    let (st, err) = s.post("/api/tasks", json!({"title": "Call Ann", "custom": {"effort": "a lot"}})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (st, task) = s.post("/api/tasks", json!({"title": "Call Ann", "custom": {"effort": 3}})).await;
    assert_eq!(st, StatusCode::CREATED, "{task}");
    let (_, three) = s.get("/api/tasks?field.effort=3").await;
    assert_eq!(three["items"][0]["id"], task["id"], "{three}");
    let (_, four) = s.get("/api/tasks?field.effort=4").await;
    assert_eq!(four["items"], json!([]));

    // The export: one column per defined field, after the usual ones, as an import reads it.
    let resp = s.request(Method::GET, "/api/contacts/export.csv?field.tier=gold").send().await.expect("export");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("csv");
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rows.headers().expect("header").iter().map(str::to_string).collect();
    let tail = &header[header.len() - 5..];
    assert_eq!(tail, ["custom.tier", "custom.score", "custom.budget", "custom.renewal", "custom.newsletter"], "{text}");
    let records: Vec<csv::StringRecord> = rows.records().map(|r| r.expect("row")).collect();
    assert_eq!(records.len(), 2, "{text}");
    let cell = |row: &csv::StringRecord, name: &str| {
        row.get(header.iter().position(|h| h == name).expect(name)).unwrap_or("").to_string()
    };
    assert_eq!(cell(&records[0], "custom.tier"), "gold");
    assert_eq!(cell(&records[0], "custom.budget"), "1500.50 EUR");
    assert_eq!(cell(&records[0], "custom.newsletter"), "yes");
    assert_eq!(cell(&records[1], "custom.score"), "7.5");
}

/// `score-new-leads` writes `lead_score` and `lead_grade` back onto a new contact.
async fn score_run(flow: &Flow) -> (String, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run: Option<(String, Option<Value>)> = sqlx::query_as(
            "SELECT status, error FROM runs WHERE workflow = 'score-new-leads'
             AND status IN ('succeeded', 'failed', 'cancelled')",
        )
        .fetch_optional(&flow.db.pool)
        .await
        .expect("runs");
        if let Some((status, error)) = run {
            return (status, error.unwrap_or(Value::Null));
        }
        assert!(Instant::now() < deadline, "the scoring run never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_writing_a_value_the_definition_refuses_fails_and_writes_nothing() {
    let mut flow = Flow::start("fields_step").await;
    flow.deploy("score-new-leads");
    // `cold`, the grade a contact with only an email and phone gets, is not offered.
    let (st, def) = flow
        .post(
            "/api/fields",
            json!({"kind": "contact", "key": "lead_grade", "label": "Lead grade", "type": "choice",
               "choices": ["hot", "warm"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{def}");
    flow.start_worker(2);
    let (st, ann) = flow
        .post("/api/contacts", json!({"name": "Ann Lee", "email": "ann@lee.example", "phone": "+1 555 0100"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ann}");
    let (status, error) = score_run(&flow).await;
    assert_eq!(status, "failed", "{error}");
    assert!(error.to_string().contains("Lead grade must be one of hot, warm"), "{error}");
    let (_, now) = flow.get(&format!("/api/contacts/{}", ann["id"])).await;
    assert_eq!(now["custom"], json!({}), "{now}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_writing_values_the_definitions_accept_succeeds() {
    let mut flow = Flow::start("fields_step_ok").await;
    flow.deploy("score-new-leads");
    for body in [
        json!({"kind": "contact", "key": "lead_grade", "label": "Lead grade", "type": "choice",
               "choices": ["hot", "warm", "cold"]}),
        json!({"kind": "contact", "key": "lead_score", "label": "Lead score", "type": "number"}),
        json!({"kind": "contact", "key": "tier", "label": "Tier", "type": "choice", "choices": ["gold"], "required": true}),
    ] {
        let (st, def) = flow.post("/api/fields", body).await;
        assert_eq!(st, StatusCode::CREATED, "{def}");
    }
    flow.start_worker(2);
    let (st, ann) = flow
        .post(
            "/api/contacts",
            json!({"name": "Ann Lee", "email": "ann@lee.example", "phone": "+1 555 0100", "custom": {"tier": "gold"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ann}");
    let (status, error) = score_run(&flow).await;
    assert_eq!(status, "succeeded", "{error}");
    // The step's `custom` is merged in: the required tier it does not know of stays.
    let (_, now) = flow.get(&format!("/api/contacts/{}", ann["id"])).await;
    assert_eq!(now["custom"]["lead_grade"], "cold", "{now}");
    assert_eq!(now["custom"]["tier"], "gold", "{now}");
}
