//! A step's reads are served without a transaction (one round trip) yet answer what the
//! transactional path answers, and never outlive the step's deadline; writes and secret reads
//! keep their transaction.

use std::time::{Duration, Instant};

use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use crm_concepts::records::NewContact;
use crm_store::host_calls::{self, Caller};
use crm_store::{Actor, contacts};
use crm_testing::ScratchDb;
use uuid::Uuid;

#[tokio::test]
async fn a_plain_read_answers_as_the_transactional_path_does_and_keeps_the_deadline() {
    let scratch = ScratchDb::new("host_call_reads", 4).await;
    let db = scratch.db.clone();
    let ada = contacts::create(
        &db,
        &Actor::system(),
        NewContact { name: "Ada Lovelace".into(), email: Some("ada@example.com".into()), ..Default::default() },
    )
    .await
    .unwrap();
    let vault = crm_vault::Vault::ephemeral();
    let caller = Caller { run_id: Uuid::nil(), step: "s", attempt: 1, workflow: "w", acting_user: None, vault: &vault };

    let get = HostCall::GetContact { id: ada.id };
    assert!(host_calls::is_plain_read(&get));
    assert!(!host_calls::is_plain_read(&HostCall::Secret { name: "api".into() }), "a secret's read is audited");
    let plain = host_calls::read(&db.pool, &caller, get.clone(), 5_000).await.unwrap();
    let in_tx = host_calls::serve(&db.pool, &caller, None, get.clone(), 5_000).await.unwrap();
    assert_eq!(plain, in_tx);
    assert!(matches!(&plain, HostReply::Contact(c) if c.email.as_deref() == Some("ada@example.com")), "{plain:?}");
    let missing = host_calls::read(&db.pool, &caller, HostCall::GetContact { id: ada.id + 1 }, 5_000).await;
    assert!(matches!(missing, Err(HostCallError::NotFound(_))), "{missing:?}");

    // A read held up (here by a lock no read can pass) ends at the step's deadline, not at the
    // connections' own bound; the step may retry it.
    let mut blocker = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE").execute(&mut *blocker).await.unwrap();
    let started = Instant::now();
    let late = host_calls::read(&db.pool, &caller, get.clone(), 300).await;
    let took = started.elapsed();
    assert!(matches!(&late, Err(HostCallError::Unavailable(m)) if m.contains("deadline")), "{late:?}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "answered after {took:?}");
    blocker.rollback().await.unwrap();
    // The connection the late read left behind serves the next read.
    let again = host_calls::read(&db.pool, &caller, get, 5_000).await.unwrap();
    assert_eq!(again, in_tx);
}
