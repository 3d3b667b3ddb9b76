//! The web app's defences, in a real browser against a real `crm serve`: values are shown
//! as text (never run), a form posted without its CSRF token (or from another site) is
//! refused and changes nothing, every page carries a strict Content-Security-Policy, and
//! a viewer's role holds on the web as on the API.

use crm_testing::{Browser, TestStack};
use reqwest::StatusCode;
use serde_json::json;

const SCRIPT_NAME: &str = "<script>alert(1)</script>";

#[tokio::test(flavor = "multi_thread")]
async fn a_contact_named_like_a_script_is_shown_as_text() {
    let stack = TestStack::start("web_xss").await;
    let (status, contact) = stack
        .post("/api/contacts", json!({"name": SCRIPT_NAME, "email": "x@evil.example", "tags": ["<b>bold</b>"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{contact}");
    let browser = Browser::start().await;
    browser.sign_in_with_token(&stack.url, &stack.manager_token).await;

    for path in [format!("/contacts/{}", contact["id"]), "/contacts".to_string(), "/search?q=script".to_string()] {
        browser.goto(&format!("{}{path}", stack.url)).await;
        browser.wait_for_text(SCRIPT_NAME).await;
        // No alert opened: WebDriver would report it on any command, and there is none.
        assert!(browser.client.get_alert_text().await.is_err(), "an alert opened on {path}");
        // The name is text inside the page, not an element of it.
        let scripts = browser.js("return document.querySelectorAll('main script').length;", vec![]).await;
        assert_eq!(scripts, json!(0), "{path}");
        let bold = browser.js("return document.querySelectorAll('main b').length;", vec![]).await;
        assert_eq!(bold, json!(0), "{path}");
    }
    let html = browser.client.source().await.expect("page source");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_posted_without_the_csrf_token_is_refused() {
    let stack = TestStack::start("web_csrf").await;
    let browser = Browser::start().await;
    browser.sign_in_with_token(&stack.url, &stack.manager_token).await;
    browser.goto(&format!("{}/contacts/new", stack.url)).await;
    browser.find("#name").await.send_keys("Forged Person").await.expect("type a name");
    // What a forged form would lack: this page's token.
    browser.js("document.querySelector('form.record input[name=_csrf]').remove();", vec![]).await;
    browser.find("form.record button[type=submit]").await.click().await.expect("submit");
    browser.wait_for_text("did not carry this page's security token").await;
    let forged: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts WHERE name = 'Forged Person'")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    assert_eq!(forged, 0);

    // The same form with its token goes through.
    browser.goto(&format!("{}/contacts/new", stack.url)).await;
    browser.find("#name").await.send_keys("Real Person").await.expect("type a name");
    browser.find("form.record button[type=submit]").await.click().await.expect("submit");
    browser.wait_for_text("Contact created.").await;

    // Outside the browser: the session cookie alone is not enough, nor is a wrong token,
    // nor a post from another site's page carrying the right one.
    let secret =
        browser.cookies().await.into_iter().find(|c| c.name() == "crm_session").expect("session").value().to_string();
    let csrf = browser.js("return document.querySelector('meta[name=csrf-token]').content;", vec![]).await;
    let csrf = csrf.as_str().expect("a token").to_string();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let post = |body: String, origin: Option<&str>| {
        let mut req = client
            .post(format!("{}/contacts", stack.url))
            .header("cookie", format!("crm_session={secret}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    assert_eq!(post("name=A".into(), None).await.expect("post").status(), StatusCode::FORBIDDEN);
    assert_eq!(post("name=B&_csrf=wrong".into(), None).await.expect("post").status(), StatusCode::FORBIDDEN);
    let cross = post(format!("name=C&_csrf={csrf}"), Some("https://evil.example")).await.expect("post");
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let fine = post(format!("name=D&_csrf={csrf}"), None).await.expect("post");
    assert_eq!(fine.status(), StatusCode::SEE_OTHER);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM contacts ORDER BY id").fetch_all(&stack.db.pool).await.expect("names");
    assert_eq!(names, vec!["Real Person", "D"]);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_has_a_strict_content_security_policy_and_viewers_cannot_write() {
    let stack = TestStack::start("web_csp").await;
    for path in ["/sign-in", "/tg", "/"] {
        let resp = stack.client.get(format!("{}{path}", stack.url)).send().await.expect("get");
        let csp = resp.headers()["content-security-policy"].to_str().expect("ascii").to_string();
        assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    }
    // The API keeps its own headers: the policy is the web app's.
    let api = stack.client.get(format!("{}/api/openapi.json", stack.url)).send().await.expect("get");
    assert!(api.headers().get("content-security-policy").is_none());

    let browser = Browser::start().await;
    browser.sign_in_with_token(&stack.url, &stack.viewer_token).await;
    // No inline script anywhere, and the page's own script ran (it marks <html>).
    browser.goto(&format!("{}/contacts", stack.url)).await;
    browser.wait_until("document.documentElement.classList.contains('js')").await;
    let inline = browser.js("return Array.from(document.scripts).filter(s => !s.src).length;", vec![]).await;
    assert_eq!(inline, json!(0));
    assert!(browser.find_all("a[href='/contacts/new']").await.is_empty(), "a viewer is offered no create button");
    browser.goto(&format!("{}/contacts/new", stack.url)).await;
    browser.wait_for_text("can look but not change records").await;
    browser.close().await;
}
