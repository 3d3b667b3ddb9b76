//! Hostile components against the real `crm worker`, engine and Redis: each fails its step
//! with the readable error its fixture expects (`workflows/fixtures/<name>/expected.toml`),
//! and the same worker process then runs normal steps — including real steps reading and
//! writing CRM records, which a worker without a database does through the engine.

use std::time::Duration;

use crm_concepts::records::{Actor, NewContact, NewDeal};
use crm_concepts::step::{ErrorKind, StepLimits, StepOutcome, StepResult};
use crm_testing::WorkerHarness;
use crm_testing::fixtures;
use serde_json::json;

fn limits(timeout_ms: u64, memory_mb: u64) -> StepLimits {
    StepLimits { timeout_ms, memory_bytes: memory_mb << 20, output_bytes: 1 << 20, log_bytes: 16 << 10 }
}

fn error_of(results: &std::collections::BTreeMap<String, StepResult>, step: &str) -> (String, String, ErrorKind) {
    match &results[step].outcome {
        StepOutcome::Failed { error } => (error.code.to_string(), error.message.clone(), error.kind),
        StepOutcome::Ok { output, .. } => {
            panic!("{step} should have failed, but returned {output}")
        }
    }
}

fn output_of(results: &std::collections::BTreeMap<String, StepResult>, step: &str) -> serde_json::Value {
    match &results[step].outcome {
        StepOutcome::Ok { output, .. } => serde_json::Value::clone(output),
        StepOutcome::Failed { error } => panic!("{step} failed: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_components_are_contained_and_the_worker_lives_on() {
    let mut h = WorkerHarness::prepare("hostile").await;
    h.start_worker(&[]).await;
    let pid = h.pid();

    // One step per hostile fixture, named after it, with the fixture's own grants and limits.
    let hostile = fixtures::hostile();
    let mut jobs = Vec::new();
    for f in &hostile {
        jobs.push(h.job(&f.package, &f.package, &f.grant_refs(), f.limits.clone(), json!({})).await);
    }
    jobs.push(h.job("fixture-echo", "normal", &[], limits(5_000, 32), json!({"hello": "world"})).await);
    let results = h.run(&jobs, Duration::from_secs(120)).await;

    for f in &hostile {
        let (step, code, text) = (&f.package, &f.code, &f.message);
        let (got_code, message, kind) = error_of(&results, step);
        assert_eq!(&got_code, code, "{step}: {message}");
        assert!(message.contains(text.as_str()), "{step}: {message:?} should mention {text:?}");
        assert_eq!(kind, ErrorKind::Permanent, "{step}: retrying a hostile step cannot help");
    }
    assert_eq!(output_of(&results, "normal")["run_input"], json!({"hello": "world"}));
    assert!(results.values().all(|r| r.worker == "test-worker"));
    // The limits were enforced on the steps, not on the worker: peak memory stayed capped.
    let bomb = &results["fixture-memory-bomb"];
    let cap = hostile.iter().find(|f| f.package == "fixture-memory-bomb").expect("the memory bomb").limits.memory_bytes;
    assert!(bomb.usage.peak_memory_bytes <= cap, "{:?}", bomb.usage);

    // Same process, still alive, and still working: a real step on real records.
    assert!(h.alive(), "the worker died:\n{}", h.log());
    assert_eq!(h.pid(), pid);
    let actor = Actor::system();
    let contact = crm_store::contacts::create(
        &h.db,
        &actor,
        NewContact {
            name: "Ann Lee".into(),
            email: Some("ann@acme.example".into()),
            phone: Some("+1 555 010 2030".into()),
            ..Default::default()
        },
    )
    .await
    .expect("create contact");
    crm_store::deals::create(
        &h.db,
        &actor,
        NewDeal {
            title: "Acme pilot".into(),
            amount_minor: 2_500_000,
            contact_id: Some(contact.id),
            ..Default::default()
        },
    )
    .await
    .expect("create deal");

    let jobs = vec![
        h.job("lead-score", "score", &["records:read", "log"], limits(5_000, 64), json!({"contact_id": contact.id}))
            .await,
        h.job(
            "follow-up-task",
            "follow-up",
            &["records:read", "records:write", "log"],
            limits(5_000, 64),
            json!({"contact_id": contact.id, "title": "Call {name}"}),
        )
        .await,
    ];
    let results = h.run(&jobs, Duration::from_secs(60)).await;
    let score = output_of(&results, "score");
    assert_eq!(score["name"], "Ann Lee");
    // email 10 + phone 5 + one open deal 15 + $25,000 of pipeline 25 + recent stage change 5
    // + the creation of the contact 2 = 62: warm.
    assert_eq!(score["score"], 62, "{score}");
    assert_eq!(score["grade"], "warm");
    assert!(results["score"].logs.iter().any(|l| l.message == "lead scored"), "{:?}", results["score"].logs);

    let task = output_of(&results, "follow-up");
    assert_eq!(task["title"], "Call Ann Lee");
    assert_eq!(task["created"], true);
    let stored = crm_store::tasks::get(&h.db, task["task_id"].as_i64().expect("task id")).await.expect("task stored");
    assert_eq!(stored.contact_id, Some(contact.id));

    assert!(h.alive(), "the worker died:\n{}", h.log());
    assert_eq!(h.pid(), pid);
    h.finish().await;
}
