//! Step effects happen exactly once, without the component's help: thousands of runs
//! whose step writes, while workers are SIGKILLed every second and the engine once. A killed
//! worker's step runs again on another worker; the engine's journal answers its repeated
//! write with the first reply, so nothing is written twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_concepts::records::{Actor, NewContact};
use crm_testing::Flow;
use serde_json::{Value, json};
use uuid::Uuid;

const RUNS: usize = 10_000;

fn one_step(name: &str, component: &str, caps: &[&str], config: &str) -> String {
    let caps: Vec<String> = caps.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "name = \"{name}\"\nversion = \"1\"\n\n[[steps]]\nid = \"write\"\ncomponent = \"{component}\"\n\
         capabilities = [{}]\nconfig = {config}\ntimeout = \"10s\"\n\
         retry = {{ max_attempts = 10, backoff = \"100ms\", max_backoff = \"1s\" }}\n",
        caps.join(", ")
    )
}

/// Starts `RUNS` runs of `workflow` with `input`, many requests at a time.
async fn start_all(flow: &Flow, workflow: &str, input: Value) -> Vec<Uuid> {
    let flow_url = flow.url.clone();
    let token = flow.token.clone();
    let client = flow.client.clone();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(RUNS)));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (client, url, token, next, ids, input) =
            (client.clone(), flow_url.clone(), token.clone(), next.clone(), ids.clone(), input.clone());
        let workflow = workflow.to_string();
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < RUNS {
                let body = json!({"workflow": workflow, "input": input});
                let resp = client.post(format!("{url}/api/runs")).bearer_auth(&token).json(&body).send().await;
                let body: Value = resp.expect("submit").json().await.expect("an answer");
                let id = body["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{body}"));
                ids.lock().unwrap().push(id);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(ids).unwrap().into_inner().unwrap()
}

/// Waits for the runs while killing a worker every second (and starting another), and the
/// engine once.
async fn with_kills(flow: &mut Flow, ids: &[Uuid], within: Duration) {
    let deadline = Instant::now() + within;
    let mut workers: Vec<usize> = (0..3).map(|_| flow.start_worker(16)).collect();
    let mut kills = 0;
    let mut engine_killed = false;
    let started = Instant::now();
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE id = ANY($1) AND status NOT IN ('succeeded', 'failed', 'cancelled')",
        )
        .bind(ids)
        .fetch_one(&flow.db.pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        if Instant::now() >= deadline {
            let denials = match flow.redis().server() {
                Some(server) => server.denials().await,
                None => Vec::new(),
            };
            panic!("{open} runs unfinished after {within:?} ({kills} worker kills); Redis ACL denials: {denials:#?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let victim = workers.remove(kills % workers.len());
        flow.kill_worker(victim);
        workers.push(flow.start_worker(16));
        kills += 1;
        if !engine_killed && started.elapsed() > Duration::from_secs(4) {
            flow.kill_engine();
            flow.start_engine().await;
            engine_killed = true;
        }
    }
    assert!(kills >= 3 && engine_killed, "the runs finished before the faults ({kills} kills): make them slower");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_run_writes_its_note_exactly_once_while_workers_and_the_engine_are_killed() {
    // Redis as production runs it: a password and an ACL user each for engine and workers.
    let mut flow = Flow::start_with_acl_redis("effects_notes").await;
    let contact = crm_store::contacts::create(
        &flow.db,
        &Actor::system(),
        NewContact { name: "Ann Lee".into(), ..Default::default() },
    )
    .await
    .unwrap();
    // A pause after the write, so kills land between a write and its result.
    flow.deploy_manifest(&one_step("note-per-run", "fixture-note", &["records:write"], "{ pause_ms = 30 }"));
    let ids = start_all(&flow, "note-per-run", json!({"contact_id": contact.id})).await;
    with_kills(&mut flow, &ids, Duration::from_secs(600)).await;

    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM runs WHERE id = ANY($1) GROUP BY status")
            .bind(&ids)
            .fetch_all(&flow.db.pool)
            .await
            .unwrap();
    assert_eq!(statuses, vec![("succeeded".to_string(), RUNS as i64)]);
    let (notes, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT body) FROM notes WHERE contact_id = $1 AND deleted_at IS NULL")
            .bind(contact.id)
            .fetch_one(&flow.db.pool)
            .await
            .unwrap();
    assert_eq!((notes, distinct), (RUNS as i64, RUNS as i64), "exactly one note per run");
    let repeated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM step_attempts WHERE run_id = ANY($1) AND attempt > 1 OR (run_id = ANY($1) AND NOT applied)",
    )
    .bind(&ids)
    .fetch_one(&flow.db.pool)
    .await
    .unwrap();
    eprintln!("{repeated} attempts were repeats; none wrote a second note");
    flow.assert_clean_history(&ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_follow_ups_for_one_contact_leave_one_task() {
    let mut flow = Flow::start_with_acl_redis("effects_follow_up").await;
    let contact = crm_store::contacts::create(
        &flow.db,
        &Actor::system(),
        NewContact { name: "Bo Chen".into(), ..Default::default() },
    )
    .await
    .unwrap();
    flow.deploy_manifest(&one_step(
        "follow-up",
        "follow-up-task",
        &["records:read", "records:write", "log"],
        "{ title = \"Call {name}\" }",
    ));
    let ids = start_all(&flow, "follow-up", json!({"contact_id": contact.id})).await;
    with_kills(&mut flow, &ids, Duration::from_secs(600)).await;

    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE id = ANY($1) AND status <> 'succeeded'")
        .bind(&ids)
        .fetch_one(&flow.db.pool)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    let tasks: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, title FROM tasks WHERE contact_id = $1 AND deleted_at IS NULL")
            .bind(contact.id)
            .fetch_all(&flow.db.pool)
            .await
            .unwrap();
    assert_eq!(tasks.len(), 1, "one follow-up, whatever the number of runs: {tasks:?}");
    assert_eq!(tasks[0].1, "Call Bo Chen");
    let outputs: Vec<Value> = sqlx::query_scalar("SELECT output FROM run_steps WHERE run_id = ANY($1)")
        .bind(&ids)
        .fetch_all(&flow.db.pool)
        .await
        .unwrap();
    assert!(outputs.iter().all(|o| o["task_id"] == tasks[0].0), "every run names the one task");
}
