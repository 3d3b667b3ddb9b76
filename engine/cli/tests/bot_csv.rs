//! CSV files through the chat, end to end: the real `crm bot` against the loopback Bot API
//! server (`crm_testing::bot_api`, with sendDocument, getFile and file downloads) and a
//! real engine. A document sent to the bot is previewed (rows, columns, first rejections)
//! and imported only on the Import button, by a user whose role allows it; `/export`
//! answers with a CSV document that imports again.

use std::time::Duration;

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_testing::process::{Process, crm, rust_log};
use crm_testing::{Call, LocalBotApi, TestStack, TgUser, send};
use reqwest::Method;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "4343:local-test-token";

struct Harness {
    // First, so it is killed before the engine it talks to goes.
    _bot: Process,
    stack: TestStack,
    api: LocalBotApi,
    _data: tempfile::TempDir,
}

impl Harness {
    async fn start(purpose: &str) -> Harness {
        let stack = TestStack::start(purpose).await;
        let api = LocalBotApi::start(TOKEN).await.expect("local Bot API server");
        let data = tempfile::tempdir().expect("temp dir");
        let mut cmd = crm();
        crm_testing::bot::configure(&mut cmd, &api, &stack.url, &stack.bot_token, data.path())
            .env("CRM_BOT_POLL_TIMEOUT_SECS", "10")
            .env("RUST_LOG", rust_log("warn"));
        let bot = Process::spawn("crm bot", cmd, &data.path().join("bot.log")).expect("start crm bot");
        api.wait_for(0, WAIT, |c| c.method == "getUpdates" && c.result.is_some()).await.expect("the bot never polled");
        Harness { _bot: bot, stack, api, _data: data }
    }

    async fn user(&self, telegram_id: i64, name: &str, role: Role) -> TgUser {
        crm_store::users::create(
            &self.stack.db,
            &Actor::system(),
            NewUser { name: name.into(), email: None, role, telegram_user_id: Some(telegram_id), time_zone: None },
        )
        .await
        .expect("create linked user");
        TgUser::new(telegram_id, name)
    }

    /// Sends a file and returns the bot's next message in that chat.
    async fn send_file(&self, from: &TgUser, name: &str, csv: &str, caption: Option<&str>) -> Call {
        let since = self.api.seq();
        self.api.send_document(from, name, csv.as_bytes(), caption);
        self.api.reply(from.id, since, WAIT).await.unwrap_or_else(|e| panic!("no reply to {name}: {e}"))
    }

    /// Presses a button; returns the text of the press's answer.
    async fn press(&self, from: &TgUser, message_id: i64, data: &str) -> String {
        let since = self.api.seq();
        let id = self.api.press(from, message_id, data);
        let answer = self
            .api
            .wait_for(since, WAIT, |c| c.method == "answerCallbackQuery" && c.params["callback_query_id"] == id)
            .await
            .unwrap_or_else(|e| panic!("button {data} not answered: {e}"));
        answer.params["text"].as_str().unwrap_or("").to_string()
    }

    /// The next message the bot sends to `chat` after `since` whose text has `part`.
    async fn message_with(&self, chat: i64, since: u64, part: &str) -> Call {
        self.api
            .wait_for(since, WAIT, |c| c.is_reply_to(chat) && c.text().contains(part))
            .await
            .unwrap_or_else(|e| panic!("no message with {part:?}: {e}"))
    }

    /// `/export KIND` and the document that answers it: (file name, content).
    async fn export(&self, from: &TgUser, kind: &str) -> (String, String) {
        let since = self.api.seq();
        self.api.send_text(from, &format!("/export {kind}"));
        let call = self
            .api
            .wait_for(since, WAIT, |c| c.method == "sendDocument" && c.chat_id() == Some(from.id))
            .await
            .unwrap_or_else(|e| panic!("no document for /export {kind}: {e}"));
        assert!(call.result.is_some(), "sendDocument failed: {:?}", call.error);
        call.document().expect("a file in the sendDocument call")
    }
}

fn button(call: &Call, label: &str) -> String {
    call.buttons()
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, data)| data)
        .unwrap_or_else(|| panic!("no button {label:?} in {:?}", call.buttons()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_is_previewed_and_imported_only_on_confirm() {
    let h = Harness::start("bot_csv_import").await;
    let manager = h.user(501, "Mia Manager", Role::Manager).await;
    let viewer = h.user(502, "Vic Viewer", Role::Viewer).await;
    let (st, _) = h.stack.post("/api/contacts", json!({"name": "Old Olga", "email": "olga@example.com"})).await;
    assert_eq!(st, 201);
    let csv = "Name,Email,Colour\nAnn Lee,ann@example.com,green\n,nobody@example.com,red\n\
               Olga Again,OLGA@example.com,\nBo Stone,bo@example.com,\n";

    // The kind comes from the file name; a dry run writes nothing.
    let preview = h.send_file(&manager, "contacts.csv", csv, None).await;
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
    let since = h.api.seq();
    let import = button(&preview, "Import");
    let message_id = preview.message_id().expect("preview message id");
    assert_eq!(h.press(&manager, message_id, &import).await, "Imported");
    let done = h.message_with(manager.id, since, "Imported contacts.csv").await;
    assert!(
        done.text().contains("4 rows: 2 created, 0 updated, 1 skipped as duplicates, 1 rejected"),
        "{}",
        done.text()
    );
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 3);
    let (_, hits) = h.stack.get("/api/search?q=Ann%20Lee").await;
    assert_eq!(hits["items"][0]["title"], "Ann Lee", "{hits}");
    // A second press of the same button imports nothing twice.
    assert!(h.press(&manager, message_id, &import).await.contains("expired"));
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 3);

    // Cancel forgets the file.
    let preview = h.send_file(&manager, "more.csv", "name\nCarl Cancel\n", Some("contacts")).await;
    assert!(preview.text().contains("1 would be created"), "{}", preview.text());
    let since = h.api.seq();
    let id = preview.message_id().expect("preview message id");
    assert_eq!(h.press(&manager, id, &button(&preview, "Cancel")).await, "Cancelled");
    h.message_with(manager.id, since, "cancelled: nothing was imported").await;
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 3);

    // A viewer may not import: the engine says so at the preview, and no button appears.
    let refused = h.send_file(&viewer, "contacts.csv", "name\nVera Viewer\n", None).await;
    assert!(refused.text().contains("role does not allow"), "{}", refused.text());
    assert!(refused.buttons().is_empty());
    // A file that names no kind is asked about, not guessed.
    let unsure = h.send_file(&manager, "export.csv", "name\nX\n", None).await;
    assert!(unsure.text().contains("Which records does export.csv hold?"), "{}", unsure.text());
    assert_eq!(h.stack.count("SELECT count(*) FROM contacts").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_answers_with_a_csv_document_that_imports_again() {
    let h = Harness::start("bot_csv_export").await;
    let manager = h.user(601, "Max Manager", Role::Manager).await;
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

    let (name, contacts_csv) = h.export(&manager, "contacts").await;
    assert_eq!(name, "contacts.csv");
    assert!(contacts_csv.starts_with("id,name,email,phone,company_id,owner_id,tags,custom,"), "{contacts_csv}");
    assert!(contacts_csv.contains("\"Li, \"\"the\"\" Boss\""), "{contacts_csv}");
    let (_, deals_csv) = h.export(&manager, "deals").await;
    assert!(deals_csv.contains(",1500,JPY,"), "{deals_csv}");

    // Gone from the CRM, then back from the exported file, as they were.
    for id in &ids {
        let (st, _) = send(h.stack.request(Method::DELETE, &format!("/api/contacts/{id}"))).await;
        assert!(st.is_success(), "{st}");
    }
    let preview = h.send_file(&manager, &name, &contacts_csv, None).await;
    assert!(preview.text().contains("2 rows: 2 would be created"), "{}", preview.text());
    let since = h.api.seq();
    let id = preview.message_id().expect("preview message id");
    h.press(&manager, id, &button(&preview, "Import")).await;
    h.message_with(manager.id, since, "2 created").await;
    let (_, again) = h.export(&manager, "contacts").await;
    assert_eq!(fields(&again), fields(&contacts_csv));

    // Deals have no duplicates: the file adds the deal again, amount and currency intact.
    let preview = h.send_file(&manager, "deals.csv", &deals_csv, None).await;
    let since = h.api.seq();
    h.press(&manager, preview.message_id().expect("id"), &button(&preview, "Import")).await;
    h.message_with(manager.id, since, "1 created").await;
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
