//! Who acts for whom: the bot's delegate token acts only for the user a request names, with
//! that user's role, and never has the operator's powers; a run answers only in the chat of
//! the person it acts for; every change names the token that really made it.

use std::time::Duration;

use crm_testing::http::answered_within;
use crm_testing::{TestStack, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

const ACTING: &str = "X-Crm-Acting-User";

async fn link_telegram(s: &TestStack, user_id: i64, telegram_id: i64) {
    sqlx::query("UPDATE users SET telegram_user_id = $2 WHERE id = $1")
        .bind(user_id)
        .bind(telegram_id)
        .execute(&s.db.pool)
        .await
        .expect("link");
}

async fn token_id(s: &TestStack, scope: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM api_tokens WHERE scope = $1 ORDER BY id LIMIT 1")
        .bind(scope)
        .fetch_one(&s.db.pool)
        .await
        .expect("a token of that scope")
}

#[tokio::test]
async fn a_run_answers_only_in_the_chat_of_the_user_it_acts_for() {
    let s = TestStack::start("acting_notify").await;
    crm_testing::deploy::deploy(&s.db, &crm_testing::deploy::one_step("ping", "")).await;
    link_telegram(&s, s.manager_id, 5001).await;
    link_telegram(&s, s.viewer_id, 5002).await;

    // A manager naming someone else's chat (the viewer's) would have the bot post there.
    let (st, body) = send(
        s.request_as(&s.manager_token, Method::POST, "/api/runs")
            .json(&json!({"workflow": "ping", "input": {}, "notify": {"chat_id": 5002, "message_id": 1}})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("your own linked Telegram chat"), "{body}");
    // An admin's own token is no exception.
    let (st, _) = send(
        s.request(Method::POST, "/api/runs")
            .json(&json!({"workflow": "ping", "input": {}, "notify": {"chat_id": 5002, "message_id": 1}})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(s.count("SELECT count(*) FROM runs").await, 0, "nothing was started");

    // Their own chat is theirs to name.
    let (st, body) = send(
        s.request_as(&s.manager_token, Method::POST, "/api/runs")
            .json(&json!({"workflow": "ping", "input": {}, "notify": {"chat_id": 5001, "message_id": 1}})),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    // The bot says which chat a command came from (a group it was allowed into, say).
    let (st, body) = send(
        s.request_as(&s.bot_token, Method::POST, "/api/runs")
            .header(ACTING, s.manager_id.to_string())
            .json(&json!({"workflow": "ping", "input": {}, "notify": {"chat_id": -500, "message_id": 7}})),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn the_bots_delegate_token_acts_for_named_users_and_has_no_operator_powers() {
    let s = TestStack::start("acting_delegate").await;
    let bot = |method: Method, path: &str| s.request_as(&s.bot_token, method, path);

    // On its own it may do only the bot's own business.
    let (st, body) = send(bot(Method::GET, "/api/contacts")).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("X-Crm-Acting-User"), "{body}");
    let (st, token) = send(bot(Method::GET, "/api/token")).await;
    assert_eq!((st, token["scope"].as_str()), (StatusCode::OK, Some("delegate")), "{token}");
    assert_eq!(send(bot(Method::GET, "/api/workflows")).await.0, StatusCode::OK);
    assert_eq!(send(bot(Method::GET, "/api/users/by-telegram/42")).await.0, StatusCode::NOT_FOUND);

    // Acting for a user it has that user's role: a viewer cannot write through the bot.
    let (st, _) =
        send(bot(Method::POST, "/api/contacts").header(ACTING, s.viewer_id.to_string()).json(&json!({"name": "Nope"})))
            .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, ann) =
        send(bot(Method::POST, "/api/contacts").header(ACTING, s.manager_id.to_string()).json(&json!({"name": "Ann"})))
            .await;
    assert_eq!(st, StatusCode::CREATED, "{ann}");

    // Acting even for an admin, it cannot deploy, set webhook keys or create users.
    let as_admin = |method: Method, path: &str| bot(method, path).header(ACTING, s.admin_id.to_string());
    let manifest = crm_testing::deploy::one_step("sneaky", "");
    for (method, path, body) in [
        (Method::POST, "/api/workflows", json!({"manifest": manifest})),
        (Method::POST, "/api/webhook-keys/inbound", json!({})),
        (Method::PUT, "/api/secrets/STRIPE_KEY", json!({"value": "sk_live_stolen"})),
        (Method::POST, "/api/users", json!({"name": "Mallory", "role": "admin"})),
    ] {
        let (st, body) = send(as_admin(method, path).json(&body)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("delegate"), "{path}: {body}");
    }
    assert_eq!(s.count("SELECT count(*) FROM workflows").await, 0);
    assert_eq!(s.count("SELECT count(*) FROM users WHERE name = 'Mallory'").await, 0);
    assert_eq!(s.count("SELECT count(*) FROM secrets").await, 0);
    // What an admin does in the chat still works: an invite.
    let (st, invite) = send(as_admin(Method::POST, "/api/invites").json(&json!({"role": "viewer"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{invite}");

    // The activity log names the delegate behind the manager.
    let (_, activity) = s.get(&format!("/api/activity?record_kind=contact&record_id={}", ann["id"])).await;
    let created = &activity["items"][0];
    assert_eq!(created["actor_id"], json!(s.manager_id), "{activity}");
    assert_eq!(created["token_id"], json!(token_id(&s, "delegate").await), "{activity}");
}

#[tokio::test]
async fn every_change_names_its_token_and_expired_tokens_stop_working() {
    let s = TestStack::start("acting_tokens").await;
    // An admin acting for the manager: the change is the manager's, made with the admin's token.
    let (st, c) = send(
        s.request(Method::POST, "/api/contacts").header(ACTING, s.manager_id.to_string()).json(&json!({"name": "Bo"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let admin_token: i64 = sqlx::query_scalar("SELECT id FROM api_tokens WHERE user_id = $1 AND scope = 'full'")
        .bind(s.admin_id)
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    let row: (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT actor_id, token_id FROM activity WHERE record_kind = 'contact' AND record_id = $1")
            .bind(c["id"].as_i64().unwrap())
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(row, (Some(s.manager_id), Some(admin_token)));

    // A manager cannot act for anyone.
    let (st, _) =
        send(s.request_as(&s.manager_token, Method::GET, "/api/contacts").header(ACTING, s.admin_id.to_string())).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // A token made to expire works until then, and not after.
    let out = s
        .command(&[
            "token",
            "create",
            "--user",
            &s.manager_id.to_string(),
            "--name",
            "laptop",
            "--expires-in-days",
            "1",
        ])
        .output()
        .expect("crm token create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(String::from_utf8_lossy(&out.stderr).contains("expires"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(send(s.request_as(&secret, Method::GET, "/api/me")).await.0, StatusCode::OK);
    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'laptop'")
        .execute(&s.db.pool)
        .await
        .unwrap();
    let st = answered_within(Duration::from_secs(2), StatusCode::UNAUTHORIZED, || {
        s.request_as(&secret, Method::GET, "/api/me")
    })
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
