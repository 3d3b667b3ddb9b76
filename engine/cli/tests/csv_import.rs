//! CSV in and out: `crm import` and `POST /api/import/{kind}` read a file in batches of
//! 5,000 rows, each one transaction, contacts two batches at a time (bad rows reported by line, duplicates skipped or
//! updated, the search index and the activity log kept, a dry run writes nothing), and `GET /api/{kind}/export.csv` writes what the list filters select in a form
//! that imports again as it is.

use crm_testing::{TestStack, send};
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn crm(stack: &TestStack, args: &[&str]) -> (bool, String, String) {
    let out = crm_testing::process::crm()
        .args(args)
        .env("CRM_DATABASE_URL", &stack.db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run crm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write csv");
    path.to_string_lossy().into_owned()
}

async fn export(s: &TestStack, path: &str) -> String {
    let resp = s.request(Method::GET, path).send().await.expect("export");
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(ct.starts_with("text/csv"), "{ct}");
    resp.text().await.expect("body")
}

async fn import(s: &TestStack, token: &str, kind_and_query: &str, csv: &str) -> (StatusCode, Value) {
    send(
        s.request_as(token, Method::POST, &format!("/api/import/{kind_and_query}"))
            .header("content-type", "text/csv")
            .body(csv.to_string()),
    )
    .await
}

#[tokio::test]
async fn the_cli_imports_good_rows_reports_bad_ones_and_skips_duplicates() {
    let s = TestStack::start("csv_cli_import").await;
    let (st, _) = s.post("/api/contacts", serde_json::json!({"name": "Old Olga", "email": "olga@example.com"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let dir = tempfile::tempdir().expect("tmp");
    let file = write(
        &dir,
        "people.csv",
        "Full name,E-mail,Phone,Tags,Favourite colour\n\
         Ann Lee,ann@example.com,+1 555 0100,vip; partner,green\n\
         ,nobody@example.com,,,\n\
         Bob Stone,not-an-email,,,\n\
         Olga Again,OLGA@example.com,,,\n\
         \"Cara, Jr.\",cara@example.com,,,blue\n",
    );

    // A dry run reports everything and writes nothing.
    let (ok, out, err) =
        crm(&s, &["import", "contacts", &file, "--map", "Full name=name", "--map", "E-mail=email", "--dry-run"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("2 would be created"), "{out}");
    assert_eq!(s.count("SELECT count(*) FROM contacts").await, 1);

    let (ok, out, err) = crm(&s, &["import", "contacts", &file, "--map", "Full name=name", "--map", "E-mail=email"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("line 3: rejected: name: must not be blank"), "{out}");
    assert!(out.contains("line 4: rejected: email"), "{out}");
    assert!(out.contains("line 5: skipped: duplicate email"), "{out}");
    assert!(out.contains("ignored columns (map them with --map COLUMN=FIELD): Favourite colour"), "{out}");
    assert!(out.contains("5 rows: 2 created, 0 updated, 1 skipped as duplicates, 2 rejected"), "{out}");
    assert_eq!(s.count("SELECT count(*) FROM contacts").await, 3);
    let (_, found) = s.get("/api/contacts?q=Ann%20Lee").await;
    let ann = &found["items"][0];
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["tags"], serde_json::json!(["vip", "partner"]));
    // Imported like any other write: with activity and an outbox event each.
    assert_eq!(s.count("SELECT count(*) FROM activity WHERE action = 'created' AND record_kind = 'contact'").await, 3);

    // Updating duplicates instead: Olga's phone comes from the file.
    let update = write(&dir, "update.csv", "name,email,phone\nOlga Petrova,olga@example.com,+7 900 000 00 00\n");
    let (ok, out, err) = crm(&s, &["import", "contacts", &update, "--on-duplicate", "update"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 row: 0 created, 1 updated"), "{out}");
    let (_, found) = s.get("/api/contacts?q=olga%40example.com").await;
    assert_eq!(found["items"][0]["phone"], "+7 900 000 00 00");

    // A file without the required column is refused as a whole.
    let bad = write(&dir, "bad.csv", "email\nx@example.com\n");
    let (ok, _, err) = crm(&s, &["import", "contacts", &bad]);
    assert!(!ok && err.contains("no column gives contacts their name"), "{err}");
}

#[tokio::test]
async fn export_then_import_gives_the_same_records() {
    let s = TestStack::start("csv_round_trip").await;
    let (_, acme) = s.post("/api/companies", serde_json::json!({"name": "Acme", "domain": "acme.test"})).await;
    let acme_id = acme["id"].as_i64().expect("company id");
    for (name, email) in [("Zoë Ünicode", "zoe@acme.test"), ("Li, \"the\" Boss", "li@acme.test")] {
        let (st, _) = s
            .post(
                "/api/contacts",
                serde_json::json!({"name": name, "email": email, "company_id": acme_id, "tags": ["a", "b"],
                    "custom": {"lead_score": 7}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let (st, _) = s.post("/api/contacts", serde_json::json!({"name": "Elsewhere Ed"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) =
        s.post("/api/deals", serde_json::json!({"title": "Yen deal", "amount_minor": 1500, "currency": "JPY"})).await;
    assert_eq!(st, StatusCode::CREATED);

    // The list filters apply: only Acme's people.
    let contacts_csv = export(&s, &format!("/api/contacts/export.csv?company_id={acme_id}")).await;
    assert_eq!(contacts_csv.lines().count(), 3, "{contacts_csv}");
    assert!(contacts_csv.starts_with("id,name,email,phone,company_id,owner_id,tags,custom,"), "{contacts_csv}");
    let deals_csv = export(&s, "/api/deals/export.csv").await;
    assert!(deals_csv.contains(",1500,JPY,"), "JPY has no minor unit: {deals_csv}");

    // Into an empty CRM: the same contacts and deal come back.
    let t = TestStack::start("csv_round_trip_into").await;
    let (_, acme2) = t.post("/api/companies", serde_json::json!({"name": "Acme", "domain": "acme.test"})).await;
    let contacts_csv = contacts_csv.replace(&format!(",{acme_id},"), &format!(",{},", acme2["id"]));
    let (st, report) = import(&t, &t.manager_token, "contacts", &contacts_csv).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(
        (report["created"].as_u64(), report["rejected"].as_array().map(Vec::len)),
        (Some(2), Some(0)),
        "{report}"
    );
    let (st, report) = import(&t, &t.manager_token, "deals", &deals_csv).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 1, "{report}");

    let strip = |csv: &str| -> Vec<Vec<String>> {
        // Compare what an import sets: name … custom (ids and timestamps differ).
        let mut rows: Vec<Vec<String>> = csv
            .lines()
            .skip(1)
            .map(|l| {
                let mut r = csv_cells(l);
                r.truncate(8);
                r.remove(0);
                r.remove(3);
                r
            })
            .collect();
        rows.sort();
        rows
    };
    let again = export(&t, "/api/contacts/export.csv").await;
    assert_eq!(strip(&again), strip(&contacts_csv));
    let (_, deals) = t.get("/api/deals").await;
    assert_eq!(
        (deals["items"][0]["amount_minor"].as_i64(), deals["items"][0]["currency"].as_str()),
        (Some(1500), Some("JPY"))
    );

    // A second import of the same file finds every contact a duplicate.
    let (_, report) = import(&t, &t.manager_token, "contacts", &contacts_csv).await;
    assert_eq!(
        (report["created"].as_u64(), report["skipped"].as_array().map(Vec::len)),
        (Some(0), Some(2)),
        "{report}"
    );
}

/// The cells of one CSV line (quotes and doubled quotes, no line breaks inside).
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(s) = cells.last_mut() {
                    s.push('"');
                }
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => {
                if let Some(s) = cells.last_mut() {
                    s.push(c);
                }
            }
        }
    }
    cells
}

#[tokio::test]
async fn the_api_import_is_for_writers_bounded_and_all_or_nothing() {
    let s = TestStack::start("csv_api_import").await;
    let csv = "name,domain\nAcme,acme.test\nAcme Again,ACME.test\nBeta,\n";
    let (st, _) = import(&s, &s.viewer_token, "companies", csv).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(s.count("SELECT count(*) FROM companies").await, 0);

    let (st, report) = import(&s, &s.manager_token, "companies?dry_run=true", csv).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!((report["created"].as_u64(), report["dry_run"].as_bool()), (Some(2), Some(true)), "{report}");
    assert_eq!(report["skipped"][0]["line"], 3, "{report}");
    assert_eq!(s.count("SELECT count(*) FROM companies").await, 0);

    let (st, report) = import(&s, &s.admin_token, "companies", csv).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(s.count("SELECT count(*) FROM companies").await, 2);

    let (st, body) = import(&s, &s.admin_token, "companies?map=Firm%3Dname", "Firm\nGamma\n").await;
    assert_eq!((st, report_created(&body)), (StatusCode::OK, 1), "{body}");
    let (st, body) = import(&s, &s.admin_token, "planets", csv).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    let (st, body) = import(&s, &s.admin_token, "companies", "domain\nx.test\n").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The engine refuses a body over the limit once it has read past it, and closes the
    // connection while the client may still be writing: then the client sees a broken pipe
    // instead of the answer. Only that is sent again; the answer must be the refusal.
    let huge = format!("name\n{}", "A company with a long name\n".repeat(400_000));
    let mut answered = None;
    for _ in 0..5 {
        let sent = s
            .request_as(&s.admin_token, Method::POST, "/api/import/companies")
            .header("content-type", "text/csv")
            .body(huge.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                answered = Some(resp.status());
                break;
            }
            Err(e) if e.is_request() => continue,
            Err(e) => panic!("request to crm serve: {e}"),
        }
    }
    assert_eq!(answered, Some(StatusCode::PAYLOAD_TOO_LARGE));
    assert_eq!(s.count("SELECT count(*) FROM companies").await, 3);

    // Both ends are in the API's OpenAPI document.
    let (_, doc) = s.get("/api/openapi.json").await;
    for (method, path) in
        [("post", "/api/import/{kind}"), ("get", "/api/contacts/export.csv"), ("get", "/api/tasks/export.csv")]
    {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
}

fn report_created(v: &Value) -> u64 {
    v["created"].as_u64().unwrap_or(u64::MAX)
}

#[tokio::test]
async fn a_file_of_several_batches_imports_like_one_row_at_a_time() {
    let s = TestStack::start("csv_batches").await;
    let (st, _) = s.post("/api/contacts", serde_json::json!({"name": "Old Olga", "email": "olga@example.com"})).await;
    assert_eq!(st, StatusCode::CREATED);
    // 12,000 rows: three batches. Line n holds person n - 2.
    let mut csv = String::from("name,email,company_id\n");
    for i in 0..12_000 {
        let (name, email, company) = match i {
            3 => ("Olga Twice".to_string(), "OLGA@example.com".to_string(), ""),
            10 => ("Same Batch".to_string(), "p9@example.com".to_string(), ""),
            6_000 => ("Next Batch".to_string(), "p1@example.com".to_string(), ""),
            7_000 => (String::new(), "blank@example.com".to_string(), ""),
            8_000 => ("No Company".to_string(), "nc@example.com".to_string(), "999999"),
            i => (format!("Person{i} Importson"), format!("p{i}@example.com"), ""),
        };
        csv.push_str(&format!("{name},{email},{company}\n"));
    }
    let dir = tempfile::tempdir().expect("tmp");
    let file = write(&dir, "many.csv", &csv);
    let (ok, out, err) = crm(&s, &["import", "contacts", &file]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("line 5: skipped: duplicate email OLGA@example.com: contact "), "{out}");
    assert!(out.contains("line 12: skipped: duplicate email p9@example.com: contact "), "{out}");
    assert!(out.contains("line 6002: skipped: duplicate email p1@example.com: contact "), "{out}");
    assert!(out.contains("line 7002: rejected: name: must not be blank"), "{out}");
    assert!(out.contains("line 8002: rejected: company_id: company 999999 does not exist"), "{out}");
    assert!(out.contains("12000 rows: 11995 created, 0 updated, 3 skipped as duplicates, 2 rejected"), "{out}");
    assert_eq!(s.count("SELECT count(*) FROM contacts").await, 11_996);
    // Every record logged and announced once, as a single write would be.
    assert_eq!(
        s.count("SELECT count(*) FROM activity WHERE record_kind = 'contact' AND action = 'created'").await,
        11_996
    );
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE record_kind = 'contact' AND action = 'created'").await,
        11_996
    );
    assert_eq!(s.count("SELECT count(DISTINCT record_id) FROM outbox WHERE record_kind = 'contact'").await, 11_996);
    // The search index knows the imported names, from the first batch and the last.
    for name in ["Person2 Importson", "Person11999 Importson"] {
        let (st, hits) = s.get(&format!("/api/search?q={}", name.replace(' ', "%20"))).await;
        assert_eq!(st, StatusCode::OK, "{hits}");
        let titles: Vec<&str> =
            hits["items"].as_array().into_iter().flatten().filter_map(|h| h["title"].as_str()).collect();
        assert!(titles.contains(&name), "search for {name} found {titles:?}");
    }

    // Two rows for one record update it in turn, the later row last.
    let update =
        write(&dir, "update.csv", "name,email,phone\nFirst,p1@example.com,+1 111\nSecond,P1@example.com,+1 222\n");
    let (ok, out, err) = crm(&s, &["import", "contacts", &update, "--on-duplicate", "update"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("2 rows: 0 created, 2 updated"), "{out}");
    let (_, found) = s.get("/api/contacts?q=p1%40example.com").await;
    assert_eq!(
        (found["items"][0]["name"].as_str(), found["items"][0]["phone"].as_str()),
        (Some("Second"), Some("+1 222"))
    );
    assert_eq!(s.count("SELECT count(*) FROM outbox WHERE record_kind = 'contact' AND action = 'updated'").await, 2);
    let (_, hits) = s.get("/api/search?q=Second").await;
    assert!(hits["items"].as_array().into_iter().flatten().any(|h| h["title"] == "Second"), "{hits}");
}

#[tokio::test]
async fn a_row_only_the_database_refuses_is_reported_and_the_rest_written() {
    let s = TestStack::start("csv_db_refuses").await;
    // Year 0 passes every check here but is not a date Postgres takes.
    let csv = "title,amount,expected_close\nFirst,100,2026-01-31\nBad date,5,0000-01-01\nThird,7,\n";
    let (st, report) = import(&s, &s.manager_token, "deals", csv).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["rejected"][0]["line"], 3, "{report}");
    assert_eq!(s.count("SELECT count(*) FROM deals").await, 2);
    assert_eq!(s.count("SELECT count(*) FROM outbox WHERE record_kind = 'deal'").await, 2);
}

#[tokio::test]
async fn contact_batches_written_side_by_side_share_new_search_words() {
    let s = TestStack::start("csv_side_by_side").await;
    // Batch 0 and batch 1 start together on two connections; batch 2 (one row) follows
    // batch 0 while batch 1 is still updating one contact 300 times in turn, and batch 1's
    // last update brings the word "quokka" that batch 2 adds too. Batch 1 must not wait for
    // batch 2's word: batch 2 commits only after batch 1.
    let mut csv = String::from("name,email\n");
    for i in 0..5_000 {
        csv.push_str(&format!("Warm{i} Up,warm{i}@example.com\n"));
    }
    for i in 0..4_700 {
        csv.push_str(&format!("Filler{i} Row,filler{i}@example.com\n"));
    }
    for i in 0..299 {
        csv.push_str(&format!("Chain{i} Link,chain@example.com\n"));
    }
    csv.push_str("Quokka Chain,chain@example.com\n");
    csv.push_str("Quokka Last,last@example.com\n");
    let request = s
        .request_as(&s.admin_token, Method::POST, "/api/import/contacts?on_duplicate=update")
        .header("content-type", "text/csv")
        .timeout(std::time::Duration::from_secs(120))
        .body(csv);
    let (st, report) = send(request).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!((report["created"].as_u64(), report["updated"].as_u64()), (Some(9_702), Some(299)), "{report}");
    assert_eq!(report["rejected"], serde_json::json!([]), "{report}");
    for name in ["Quokka Chain", "Quokka Last", "Warm4999 Up"] {
        let (st, hits) = s.get(&format!("/api/search?q={}", name.replace(' ', "%20"))).await;
        assert_eq!(st, StatusCode::OK, "{hits}");
        let titles: Vec<&str> =
            hits["items"].as_array().into_iter().flatten().filter_map(|h| h["title"].as_str()).collect();
        assert!(titles.contains(&name), "search for {name} found {titles:?}");
    }
    assert_eq!(s.count("SELECT count(*) FROM outbox WHERE record_kind = 'contact'").await, 10_001);
}
