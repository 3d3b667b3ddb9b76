//! CSV files through the chat, end to end: the real `crm bot` against the loopback Bot API
//! server (`crm_testing::bot_api`, with sendDocument, getFile and file downloads) and a
//! real engine. A document sent to the bot is previewed (rows, columns, first rejections)
//! and imported only on the Import button, by a user whose role allows it; `/export`
//! answers with a CSV document that imports again.

use crm_concepts::user::Role;
use crm_testing::bot::button;
use crm_testing::{BotStack, send};
use reqwest::Method;
use serde_json::json;

const TOKEN: &str = "4343:local-test-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_is_previewed_and_imported_only_on_confirm() {
    let h = BotStack::start("bot_csv_import", TOKEN).await;
    let (manager, _) = h.user(501, "Mia Manager", Role::Manager).await;
    let (viewer, _) = h.user(502, "Vic Viewer", Role::Viewer).await;
    let (st, _) = h.stack.post("/api/contacts", json!({"name": "Old Olga", "email": "olga@example.com"})).await;
    assert_eq!(st, 201);
    let csv = "Name,Email,Colour\nAnn Lee,ann@example.com,green\n,nobody@example.com,red\n\
               Olga Again,OLGA@example.com,\nBo Stone,bo@example.com,\n";

    // The kind comes from the file name; a dry run writes nothing.
    let preview = h.bot.send_file(&manager, "contacts.csv", csv, None).await;
    let text = preview.text();
    assert!(
        text.contains("4 rows: 2 would be created, 0 would be updated, 1 skipped as duplicates, 1 rejected"),
        "{text}"
    );
    assert!(text.contains("Columns read: Name → name, Email → email"), "{text}");
    assert!(text.contains("Columns ignored: Colour"), "{text}");
    assert!(text.contains("line 3: name: must not be blank"), "{text}");
    assert!(text.contains("Skipped as duplicates: lines 4"), "{text}");
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 1);

    // Import: the good rows go in, once.
    let since = h.bot.api.seq();
    let import = button(&preview, "Import");
    let message_id = preview.message_id().expect("preview message id");
    assert_eq!(h.bot.press(&manager, message_id, &import).await, "Imported");
    let done = h.bot.reply_with(since, manager.id, "Imported contacts.csv").await;
    assert!(
        done.text().contains("4 rows: 2 created, 0 updated, 1 skipped as duplicates, 1 rejected"),
        "{}",
        done.text()
    );
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 3);
    let (_, hits) = h.stack.get("/api/search?q=Ann%20Lee").await;
    assert_eq!(hits["items"][0]["title"], "Ann Lee", "{hits}");
    // A second press of the same button imports nothing twice.
    assert!(h.bot.press(&manager, message_id, &import).await.contains("expired"));
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 3);

    // Cancel forgets the file.
    let preview = h.bot.send_file(&manager, "more.csv", "name\nCarl Cancel\n", Some("contacts")).await;
    assert!(preview.text().contains("1 would be created"), "{}", preview.text());
    let since = h.bot.api.seq();
    let id = preview.message_id().expect("preview message id");
    assert_eq!(h.bot.press(&manager, id, &button(&preview, "Cancel")).await, "Cancelled");
    h.bot.reply_with(since, manager.id, "cancelled: nothing was imported").await;
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 3);

    // A viewer may not import: the engine says so at the preview, and no button appears.
    let refused = h.bot.send_file(&viewer, "contacts.csv", "name\nVera Viewer\n", None).await;
    assert!(refused.text().contains("role does not allow"), "{}", refused.text());
    assert!(refused.buttons().is_empty());
    // A file that names no kind is asked about, not guessed.
    let unsure = h.bot.send_file(&manager, "export.csv", "name\nX\n", None).await;
    assert!(unsure.text().contains("Which records does export.csv hold?"), "{}", unsure.text());
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_answers_with_a_csv_document_that_imports_again() {
    let h = BotStack::start("bot_csv_export", TOKEN).await;
    let (manager, _) = h.user(601, "Max Manager", Role::Manager).await;
    let (_, acme) = h.stack.post("/api/companies", json!({"name": "Acme", "domain": "acme.test"})).await;
    let mut ids = Vec::new();
    for (name, email) in [("Zoë Ünicode", "zoe@acme.test"), ("Li, \"the\" Boss", "li@acme.test")] {
        let (st, c) = h
            .stack
            .post("/api/contacts", json!({"name": name, "email": email, "company_id": acme["id"], "tags": ["a", "b"]}))
            .await;
        assert_eq!(st, 201, "{c}");
        ids.push(c["id"].as_i64().expect("contact id"));
    }
    let (st, _) =
        h.stack.post("/api/deals", json!({"title": "Yen deal", "amount_minor": 1500, "currency": "JPY"})).await;
    assert_eq!(st, 201);

    let (name, contacts_csv) = h.bot.say_for_document(&manager, "/export contacts").await;
    assert_eq!(name, "contacts.csv");
    assert!(contacts_csv.starts_with("id,name,email,phone,company_id,owner_id,tags,custom,"), "{contacts_csv}");
    assert!(contacts_csv.contains("\"Li, \"\"the\"\" Boss\""), "{contacts_csv}");
    let (_, deals_csv) = h.bot.say_for_document(&manager, "/export deals").await;
    assert!(deals_csv.contains(",1500,JPY,"), "{deals_csv}");

    // Gone from the CRM, then back from the exported file, as they were.
    for id in &ids {
        let (st, _) = send(h.stack.request(Method::DELETE, &format!("/api/contacts/{id}"))).await;
        assert!(st.is_success(), "{st}");
    }
    let preview = h.bot.send_file(&manager, &name, &contacts_csv, None).await;
    assert!(preview.text().contains("2 rows: 2 would be created"), "{}", preview.text());
    let since = h.bot.api.seq();
    let id = preview.message_id().expect("preview message id");
    h.bot.press(&manager, id, &button(&preview, "Import")).await;
    h.bot.reply_with(since, manager.id, "2 created").await;
    let (_, again) = h.bot.say_for_document(&manager, "/export contacts").await;
    assert_eq!(fields(&again), fields(&contacts_csv));

    // Deals have no duplicates: the file adds the deal again, amount and currency intact.
    let preview = h.bot.send_file(&manager, "deals.csv", &deals_csv, None).await;
    let since = h.bot.api.seq();
    h.bot.press(&manager, preview.message_id().expect("id"), &button(&preview, "Import")).await;
    h.bot.reply_with(since, manager.id, "1 created").await;
    assert_eq!(h.stack.count("SELECT count(*) FROM deals WHERE amount_minor = 1500 AND currency = 'JPY'").await, 2);
}

/// The rows of an export as an import sets them: name … custom (ids and times differ).
fn fields(csv: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.expect("a CSV row").iter().skip(1).take(7).map(str::to_string).collect())
        .collect();
    rows.sort();
    rows
}
