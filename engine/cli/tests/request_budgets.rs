//! Cheap requests stay cheap: a request that has no right to an expensive answer is refused
//! before it costs anything (a body, a secret look-up, a database poll), repeated failures
//! and floods meet a per-address budget, and however many clients follow runs, the engine
//! looks at Postgres once per tick for all of them.

use std::time::{Duration, Instant};

use crm_testing::deploy::{deploy, one_step};
use crm_testing::{Options, TestStack, send};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn with_env(env: &[(&str, &str)]) -> Options {
    Options { env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Options::default() }
}

/// A run that stays queued: its workflow is deployed, but no worker runs in these stacks.
async fn queued_run(s: &TestStack) -> String {
    deploy(&s.db, &one_step("waits", "")).await;
    let (st, run) = s.post("/api/runs", json!({"workflow": "waits", "input": {}})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{run}");
    run["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn a_viewers_huge_deploy_is_refused_before_its_body_is_read() {
    let s = TestStack::start("budget_deploy").await;
    // 90 MiB announced, 64 KiB sent, then nothing: only an answer that does not wait for the
    // body can arrive.
    let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(chunk) }).chain(futures::stream::pending());
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        s.request_as(&s.viewer_token, Method::POST, "/api/workflows")
            .header("content-type", "application/json")
            .header("content-length", (90u64 << 20).to_string())
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    )
    .await
    .expect("the engine answered without waiting for the body");
    let answer = answer.expect("a response");
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(s.count("SELECT count(*) FROM workflows").await, 0);
}

#[tokio::test]
async fn repeated_authentication_failures_from_one_address_are_slowed_down() {
    let s = TestStack::start_with("budget_auth", with_env(&[("CRM_AUTH_FAILURES_PER_MINUTE", "5")])).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let (st, _) = s
            .request_as(&format!("crm_guess{i}"), Method::GET, "/api/contacts")
            .send()
            .await
            .map_or((StatusCode::IM_A_TEAPOT, ()), |r| (r.status(), ()));
        statuses.push(st);
    }
    assert_eq!(&statuses[..5], &[StatusCode::UNAUTHORIZED; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // While the address is over its budget, even a right token waits: guessing cannot go
    // on by mixing in a known one.
    let (st, body) = send(s.request(Method::GET, "/api/contacts")).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("wait a minute"), "{body}");
    // The budget is that address's alone: a client from another one is answered on its
    // merits (loopback is all of 127/8).
    let other = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let (st, body) = send(other.get(format!("{}/api/contacts", s.url)).bearer_auth(&s.admin_token)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // Successful requests never spend the budget.
    let t = TestStack::start_with("budget_auth_ok", with_env(&[("CRM_AUTH_FAILURES_PER_MINUTE", "2")])).await;
    for _ in 0..20 {
        assert_eq!(t.get("/api/contacts").await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_webhook_flood_from_one_address_is_refused_before_any_work() {
    let s = TestStack::start_with("budget_hooks", with_env(&[("CRM_HOOKS_PER_SECOND", "2")])).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let (st, _) = send(s.client.post(format!("{}/hooks/nowhere", s.url)).body("{}")).await;
        statuses.push(st);
    }
    // The burst (twice the rate) is answered on its merits (no such hook), the rest 429.
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::NOT_FOUND).count(), 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 6, "{statuses:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (st, _) = send(s.client.post(format!("{}/hooks/nowhere", s.url)).body("{}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "the budget refills");
}

#[tokio::test]
async fn event_streams_are_capped_per_token_and_end_after_their_lifetime() {
    let s = TestStack::start_with(
        "budget_streams",
        with_env(&[("CRM_STREAMS_PER_TOKEN", "2"), ("CRM_STREAM_LIFETIME_SECS", "2")]),
    )
    .await;
    let run = queued_run(&s).await;
    let path = format!("/api/runs/{run}/events");
    let open = |token: &str| s.request_as(token, Method::GET, &path).send();
    let first = open(&s.admin_token).await.unwrap();
    let second = open(&s.admin_token).await.unwrap();
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    let (st, body) = send(s.request(Method::GET, &path)).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("2 open event streams"), "{body}");
    // The cap is per token: another user's token is not affected.
    assert_eq!(open(&s.viewer_token).await.unwrap().status(), StatusCode::OK);

    // A closed stream frees its slot.
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        let r = open(&s.admin_token).await.unwrap();
        if r.status() == StatusCode::OK {
            reopened = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reopened = reopened.expect("the slot of a closed stream is freed");

    // Past its lifetime a stream says so and ends.
    let text = tokio::time::timeout(Duration::from_secs(10), reopened.text()).await.expect("the stream ended").unwrap();
    assert!(text.contains("event: reconnect"), "{text}");
    assert!(text.contains("event: step"), "the stream showed the run first: {text}");
    drop(second);
}

/// Transactions Postgres counted for the scratch database so far.
async fn transactions(s: &TestStack) -> i64 {
    // Backends flush their statistics about once a second while busy: a window of seconds
    // reads them well enough to tell one look per tick from a poll per client.
    let name = s.db_name.clone();
    sqlx::query_scalar("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&s.db.pool)
        .await
        .expect("pg_stat_database")
}

#[tokio::test]
async fn many_followers_of_runs_cost_one_look_per_tick() {
    let s = TestStack::start_with("budget_watch", with_env(&[("CRM_STREAMS_PER_TOKEN", "64")])).await;
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(queued_run(&s).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle_before = transactions(&s).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = transactions(&s).await - idle_before;

    // Forty clients following five runs, each stream having shown its run.
    let mut streams = Vec::new();
    for i in 0..40 {
        let run = &runs[i % runs.len()];
        let mut events =
            s.request(Method::GET, &format!("/api/runs/{run}/events")).send().await.unwrap().bytes_stream();
        let first = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap_or_else(|_| panic!("no event for stream {i}; log: {}", s.log()))
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&first).contains("event: step"));
        streams.push(events);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = transactions(&s).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let following = transactions(&s).await - before - idle;
    // A poll per client would be 40 clients × 2 queries every 150 ms: 1,600 in 3 s. One look
    // per tick for everyone is about 20.
    assert!(following < 120, "{following} transactions in 3 s for 40 followers (idle: {idle})");
    drop(streams);
}
