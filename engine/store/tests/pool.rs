//! The engine's pools hand out a connection in steady use without pinging it first
//! (`crm_store::database::pool_options`), so a connection whose server process died is only
//! found out by the statement that uses it: that statement fails, the connection is dropped,
//! and the next one gets a fresh connection.

use crm_testing::ScratchDb;

async fn backend_pid(pool: &sqlx::PgPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(pool).await
}

#[tokio::test]
async fn a_connection_whose_server_died_fails_one_statement_and_is_replaced() {
    let scratch = ScratchDb::new("pool_recovery", 1).await;
    let pool = scratch.db.pool.clone();
    let first = backend_pid(&pool).await.unwrap();
    assert_eq!(backend_pid(&pool).await.unwrap(), first, "one connection, reused");

    let admin = scratch.pool(1).await;
    let killed: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(first).fetch_one(&admin).await.unwrap();
    assert!(killed);
    // The server process is gone; give the socket's end time to arrive.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let mut failures = 0;
    let fresh = loop {
        match backend_pid(&pool).await {
            Ok(pid) => break pid,
            Err(e) => {
                failures += 1;
                assert!(failures <= 1, "the pool kept a dead connection: {e}");
            }
        }
    };
    assert_ne!(fresh, first, "a new server process");
    assert_eq!(backend_pid(&pool).await.unwrap(), fresh, "and it is kept");
    scratch.close().await;
}
