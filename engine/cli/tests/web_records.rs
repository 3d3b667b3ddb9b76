//! Records in the web app, in a real browser against a real `crm serve`: finding a contact
//! by a misspelt name and reading its page (fields, custom fields, notes, activity with
//! before and after), and forms that refuse what the API refuses with the same message.

use crm_testing::{Browser, TestStack};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn find_a_contact_by_a_misspelt_name_and_open_it() {
    let stack = TestStack::start("web_find").await;
    let (_, acme) = stack.post("/api/companies", json!({"name": "NASA Langley"})).await;
    for (name, email) in [
        ("Katherine Johnson", "katherine@nasa.example"),
        ("Dorothy Vaughan", "dorothy@nasa.example"),
        ("Mary Jackson", "mary@nasa.example"),
    ] {
        let body = json!({"name": name, "email": email, "company_id": acme["id"], "custom": {"team": "West Area"}});
        let (status, v) = stack.post("/api/contacts", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let browser = Browser::start().await;
    browser.sign_in_with_token(&stack.url, &stack.manager_token).await;

    // From the start page's search box, two typos.
    browser.find("form.search-box input[name=q]").await.send_keys("katherin jonson").await.expect("type");
    browser.find("form.search-box button").await.click().await.expect("search");
    browser.find("#hits li a").await;
    let first = browser.text("#hits li a").await;
    assert_eq!(first, "Katherine Johnson");
    browser.find("#hits li a").await.click().await.expect("open the hit");
    browser.wait_for_text("katherine@nasa.example").await;
    assert!(browser.path().await.starts_with("/contacts/"));
    let page = browser.page_text().await;
    assert!(page.contains("NASA Langley") && page.contains("West Area"), "{page}");

    // The contacts table's own search forgives the same typos.
    browser.goto(&format!("{}/contacts?q=dorothy+vaughn", stack.url)).await;
    assert_eq!(browser.text("#contacts tbody tr td a").await, "Dorothy Vaughan");

    // A note and an edit show up on the page, the edit with before and after.
    browser.goto(&format!("{}/contacts?q=katherine", stack.url)).await;
    browser.find("#contacts tbody tr td a").await.click().await.expect("open");
    browser.find("#note-body").await.send_keys("Computed the trajectory.").await.expect("type a note");
    browser.find("section.notes button").await.click().await.expect("add the note");
    browser.wait_for_text("Note added.").await;
    browser.wait_for_text("Computed the trajectory.").await;
    browser.find(".title-row a.button").await.click().await.expect("edit");
    let phone = browser.find("#phone").await;
    phone.send_keys("+1 757 555 0100").await.expect("type a phone");
    browser.find("form.record button[type=submit]").await.click().await.expect("save");
    browser.wait_for_text("Contact saved.").await;
    let changes = browser.text("section.activity").await;
    assert!(changes.contains("updated by Max Manager") && changes.contains("+1 757 555 0100"), "{changes}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_refuse_what_the_api_refuses_with_the_same_message() {
    let stack = TestStack::start("web_forms").await;
    let (status, api) = stack.post("/api/contacts", json!({"name": "Ann", "email": "not-an-email"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let api_message = api["error"]["fields"][0]["message"].as_str().expect("a field message").to_string();
    assert_eq!(api["error"]["fields"][0]["field"], "email");

    let browser = Browser::start().await;
    browser.sign_in_with_token(&stack.url, &stack.manager_token).await;
    browser.goto(&format!("{}/contacts/new", stack.url)).await;
    browser.find("#name").await.send_keys("Ann").await.expect("type");
    browser.find("#email").await.send_keys("not-an-email").await.expect("type");
    browser.find("#custom").await.send_keys("[1, 2]").await.expect("type");
    browser.find("form.record button[type=submit]").await.click().await.expect("submit");
    // What the form checks itself comes first; the typed values stay.
    browser.wait_for_text("must be a JSON object").await;
    assert_eq!(browser.find("#email").await.prop("value").await.expect("value"), Some("not-an-email".into()));
    browser.find("#custom").await.clear().await.expect("clear");
    browser.find("form.record button[type=submit]").await.click().await.expect("submit");
    browser.wait_for_text(&api_message).await;
    assert_eq!(browser.text(".field.invalid .field-error").await, api_message);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM contacts").fetch_one(&stack.db.pool).await.expect("count");
    assert_eq!(count, 0);

    // A deal amount is read like the bot reads it.
    browser.goto(&format!("{}/deals/new", stack.url)).await;
    browser.find("#title").await.send_keys("Orbital consulting").await.expect("type");
    browser.find("#amount").await.send_keys("12 500.50 EUR").await.expect("type");
    browser.find("form.record button[type=submit]").await.click().await.expect("submit");
    browser.wait_for_text("Deal created.").await;
    let (amount, currency): (i64, String) =
        sqlx::query_as("SELECT amount_minor, currency FROM deals").fetch_one(&stack.db.pool).await.expect("the deal");
    assert_eq!((amount, currency.as_str()), (1_250_050, "EUR"));
    browser.close().await;
}
