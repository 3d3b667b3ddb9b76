//! The engine keeps the API tokens (and the users delegate tokens act for) it verified
//! lately, so a request does not cost a database round trip for its token; and it believes
//! them only while nothing changed: its own changes count at once, anyone else's as soon as
//! Postgres announces them, and without its listener it looks every token up again.

use std::time::Duration;

use crm_testing::http::answered_within;
use crm_testing::process::metrics_url;
use crm_testing::{Options, TestStack, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// `crm_api_token_lookups_total{source=…}` as the engine's metrics say now.
async fn lookups(metrics: &str, source: &str) -> f64 {
    let text = reqwest::get(metrics).await.expect("scrape").text().await.expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with("crm_api_token_lookups_total{") && l.contains(&format!("source=\"{source}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sends `token`'s `GET /api/me` until the engine answers it from its cache.
async fn until_cached(stack: &TestStack, metrics: &str, token: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let before = lookups(metrics, "cache").await;
        assert_eq!(send(stack.request_as(token, Method::GET, "/api/me")).await.0, StatusCode::OK);
        if lookups(metrics, "cache").await > before {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the engine never answered a token from its cache");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stack(purpose: &str) -> (TestStack, String) {
    let options = Options { env: vec![("CRM_METRICS_LISTEN".into(), "127.0.0.1:0".into())], ..Options::default() };
    let stack = TestStack::start_with(purpose, options).await;
    let metrics = metrics_url(|| stack.log()).await;
    (stack, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_token_is_not_looked_up_again_until_something_changes() {
    let (s, metrics) = stack("token_cache_kept").await;
    until_cached(&s, &metrics, &s.manager_token).await;

    // Twenty more requests: none of them asks Postgres who sent it.
    let (db_before, cache_before) = (lookups(&metrics, "database").await, lookups(&metrics, "cache").await);
    for _ in 0..20 {
        assert_eq!(send(s.request_as(&s.manager_token, Method::GET, "/api/me")).await.0, StatusCode::OK);
    }
    assert_eq!(lookups(&metrics, "database").await, db_before);
    assert_eq!(lookups(&metrics, "cache").await, cache_before + 20.0);

    // A change the engine makes itself shows on the very next request.
    let (st, me) =
        send(s.request_as(&s.manager_token, Method::PATCH, "/api/me/settings").json(&json!({"language": "ru"}))).await;
    assert_eq!((st, me["language"].as_str()), (StatusCode::OK, Some("ru")), "{me}");
    let (st, me) = send(s.request_as(&s.manager_token, Method::GET, "/api/me")).await;
    assert_eq!((st, me["language"].as_str()), (StatusCode::OK, Some("ru")), "{me}");

    // A user disabled by an operator's SQL: refused once Postgres has announced it.
    until_cached(&s, &metrics, &s.viewer_token).await;
    sqlx::query("UPDATE users SET disabled_at = now() WHERE id = $1")
        .bind(s.viewer_id)
        .execute(&s.db.pool)
        .await
        .unwrap();
    let st = answered_within(Duration::from_secs(2), StatusCode::UNAUTHORIZED, || {
        s.request_as(&s.viewer_token, Method::GET, "/api/me")
    })
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // The user a delegate token acts for is kept too, and let go the same way.
    let acting =
        || s.request_as(&s.bot_token, Method::GET, "/api/me").header("X-Crm-Acting-User", s.manager_id.to_string());
    assert_eq!(send(acting()).await.0, StatusCode::OK);
    sqlx::query("UPDATE users SET role = 'viewer' WHERE id = $1").bind(s.manager_id).execute(&s.db.pool).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let (st, me) = send(acting()).await;
        assert_eq!(st, StatusCode::OK);
        if me["role"] == "viewer" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the acting user's new role never showed: {me}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_drops_what_the_engine_kept() {
    let (s, metrics) = stack("token_cache_lost").await;
    until_cached(&s, &metrics, &s.manager_token).await;

    // Cut the engine's listening connection, and revoke the token while it is gone: the
    // announcement is lost, so the engine must not believe what it kept.
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN \"crm_credentials\"%'",
    )
    .fetch_one(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(cut, 1, "the engine listens for credential changes on one connection");
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE token_hash = sha256(convert_to($1, 'UTF8'))")
        .bind(&s.manager_token)
        .execute(&s.db.pool)
        .await
        .unwrap();
    let st = answered_within(Duration::from_secs(2), StatusCode::UNAUTHORIZED, || {
        s.request_as(&s.manager_token, Method::GET, "/api/me")
    })
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // And once it listens again, it keeps tokens again.
    until_cached(&s, &metrics, &s.admin_token).await;
}
