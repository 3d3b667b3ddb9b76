//! Webhook intake against a real Postgres: a signed request starts one run with the body as
//! its input; unsigned, stale, forged and replayed requests are refused and start nothing.

use chrono::Utc;
use crm_testing::ScratchDb;
use crm_testing::deploy::{deploy, one_step};
use crm_triggers::WebhookError;
use crm_triggers::signature::{SignatureError, Signed, sign};
use crm_triggers::webhook::{self, REPLAY_WINDOW_SECS, SignedRequest};
use crm_vault::Vault;

async fn runs(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM runs").fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn only_fresh_correctly_signed_requests_start_runs() {
    let s = ScratchDb::new("webhook_intake", 10).await;
    deploy(&s.db, &one_step("lead-form", "[[triggers]]\nkind = \"webhook\"\npath = \"leads\"\nkey = \"LEADS_HMAC\"\n"))
        .await;
    let (_redis, sched) = crm_testing::scheduler(&s, "webhook_intake").await;
    let starter = sched.admission();
    let pool = &s.db.pool;
    let vault = &Vault::ephemeral();
    let body = br#"{"name": "Ann Lee", "email": "ann@example.com"}"#;
    let now = Utc::now();
    let ts = now.timestamp().to_string();
    let req = |sig: Option<&'static str>, ts: Option<&'static str>| SignedRequest {
        path: "leads",
        timestamp: ts,
        signature: sig,
        body,
    };
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };

    let signed = Signed { path: "leads", body };

    // No key set yet: refused, and the message says how to set one.
    let e = webhook::accept(pool, vault, &starter, req(None, None), now).await.unwrap_err();
    assert!(matches!(e, WebhookError::NoKey { .. }) && e.to_string().contains("crm webhook key LEADS_HMAC"), "{e}");

    let secret = webhook::set_key(&s.db, vault, "LEADS_HMAC", None).await.unwrap();
    let good = leak(sign(secret.as_bytes(), now.timestamp(), signed));
    let ts: &'static str = leak(ts);

    let unsigned = webhook::accept(pool, vault, &starter, req(None, Some(ts)), now).await.unwrap_err();
    assert!(matches!(unsigned, WebhookError::Signature(SignatureError::MissingSignature)), "{unsigned}");
    let forged = leak(sign(b"not-the-secret-at-all", now.timestamp(), signed));
    let e = webhook::accept(pool, vault, &starter, req(Some(forged), Some(ts)), now).await.unwrap_err();
    assert!(matches!(e, WebhookError::Signature(SignatureError::Mismatch)), "{e}");
    let old = now.timestamp() - REPLAY_WINDOW_SECS - 1;
    let stale_sig = leak(sign(secret.as_bytes(), old, signed));
    let e = webhook::accept(pool, vault, &starter, req(Some(stale_sig), Some(leak(old.to_string()))), now)
        .await
        .unwrap_err();
    assert!(matches!(e, WebhookError::Signature(SignatureError::Stale { .. })), "{e}");
    let e = webhook::accept(pool, vault, &starter, SignedRequest { path: "nope", ..req(Some(good), Some(ts)) }, now)
        .await
        .unwrap_err();
    assert!(matches!(e, WebhookError::UnknownHook(_)), "{e}");
    assert_eq!(runs(pool).await, 0, "no refused request started a run");

    let accepted = webhook::accept(pool, vault, &starter, req(Some(good), Some(ts)), now).await.unwrap();
    assert_eq!(accepted.workflow, "lead-form");
    let input: serde_json::Value =
        sqlx::query_scalar("SELECT input FROM runs WHERE id = $1").bind(accepted.run_id).fetch_one(pool).await.unwrap();
    assert_eq!(input, serde_json::json!({"name": "Ann Lee", "email": "ann@example.com"}));

    let replay = webhook::accept(pool, vault, &starter, req(Some(good), Some(ts)), now).await.unwrap_err();
    assert!(matches!(replay, WebhookError::Replayed), "{replay}");
    assert_eq!(runs(pool).await, 1);
    s.close().await;
}

#[tokio::test]
async fn concurrent_copies_of_one_request_start_one_run() {
    let s = ScratchDb::new("webhook_race", 10).await;
    deploy(&s.db, &one_step("hook", "[[triggers]]\nkind = \"webhook\"\npath = \"hook\"\n")).await;
    let vault = std::sync::Arc::new(Vault::ephemeral());
    let secret = webhook::set_key(&s.db, &vault, "hook", Some("a-shared-secret-of-some-length")).await.unwrap();
    let now = Utc::now();
    let body: &'static [u8] = b"{\"n\": 1}";
    let signed = Signed { path: "hook", body };
    let sig: &'static str = Box::leak(sign(secret.as_bytes(), now.timestamp(), signed).into_boxed_str());
    let ts: &'static str = Box::leak(now.timestamp().to_string().into_boxed_str());
    let (_redis, sched) = crm_testing::scheduler(&s, "webhook_race").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = s.db.pool.clone();
        let starter = sched.admission();
        let vault = vault.clone();
        tasks.push(tokio::spawn(async move {
            let req = SignedRequest { path: "hook", timestamp: Some(ts), signature: Some(sig), body };
            webhook::accept(&pool, &vault, &starter, req, now).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WebhookError::Replayed) => {}
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(runs(&s.db.pool).await, 1);
    s.close().await;
}

#[tokio::test]
async fn a_delivery_to_one_hook_is_refused_at_another_that_shares_its_key() {
    let s = ScratchDb::new("webhook_paths", 10).await;
    let both = "[[triggers]]\nkind = \"webhook\"\npath = \"orders\"\nkey = \"SHOP\"\n";
    deploy(&s.db, &one_step("orders", both)).await;
    deploy(&s.db, &one_step("refunds", &both.replace("orders", "refunds"))).await;
    let vault = Vault::ephemeral();
    let key = webhook::set_key(&s.db, &vault, "SHOP", None).await.unwrap();
    let (_redis, sched) = crm_testing::scheduler(&s, "webhook_paths").await;
    let starter = sched.admission();
    let now = Utc::now();
    let body: &[u8] = br#"{"order": 7, "amount_minor": 129900}"#;
    let ts = now.timestamp().to_string();
    let sig = sign(key.as_bytes(), now.timestamp(), Signed { path: "orders", body });

    // Captured on its way to /hooks/orders and replayed to /hooks/refunds.
    let stolen = SignedRequest { path: "refunds", timestamp: Some(&ts), signature: Some(&sig), body };
    let e = webhook::accept(&s.db.pool, &vault, &starter, stolen, now).await.unwrap_err();
    assert!(matches!(e, WebhookError::Signature(SignatureError::Mismatch)), "{e}");
    assert_eq!(runs(&s.db.pool).await, 0);

    let genuine = SignedRequest { path: "orders", ..stolen };
    assert_eq!(webhook::accept(&s.db.pool, &vault, &starter, genuine, now).await.unwrap().workflow, "orders");
    s.close().await;
}
