//! The real Postgres and Redis the tests run against, and each test's own part of them: a
//! scratch database and a Redis key prefix, both named after the test and removed again.
//!
//! The machine's Postgres and Redis are shared with other test runs and with a developer's
//! own `crm up`, whose database is `crm` and whose key prefix is `crm`. Every name made here
//! starts with `crm_t_`, so no test can reach the installation's data.

use std::time::Duration;

use crm_queue::{Keys, Queue};
use crm_scheduler::SchedulerConfig;
use crm_store::Db;

/// What every database and key prefix made for a test starts with.
pub const TEST_NAME_PREFIX: &str = "crm_t_";

/// The Postgres server to make scratch databases on (`CRM_TEST_PG`): the URL of a database
/// that the test user may `CREATE DATABASE` from.
pub fn postgres_url() -> String {
    std::env::var("CRM_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis server (`CRM_TEST_REDIS`).
pub fn redis_url() -> String {
    std::env::var("CRM_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `crm_t_{purpose}_{12 random hex digits}`: unique per call, and a valid Postgres database
/// name and Redis key prefix. `purpose` says which test it belongs to when one is left behind.
pub fn unique_name(purpose: &str) -> String {
    assert!(
        !purpose.is_empty() && purpose.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "a test purpose is lower-case letters, digits and underscores (it names databases and key patterns): {purpose:?}"
    );
    let name = format!("{TEST_NAME_PREFIX}{purpose}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    assert!(name.len() <= 63, "{name:?} is longer than a Postgres database name may be; shorten the purpose");
    name
}

/// Runs async cleanup from `Drop`, which runs inside the test's runtime and so cannot block
/// on it there: a thread with a small runtime of its own does the work.
pub(crate) fn cleanup_blocking<F: Future<Output = ()> + Send + 'static>(work: F) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(work);
        }
    })
    .join();
}

/// A freshly migrated database of its own, dropped when this goes out of scope (or by
/// [`ScratchDb::close`], which a test can await).
pub struct ScratchDb {
    /// a pool on the scratch database
    pub db: Db,
    pub url: String,
    pub name: String,
    closed: bool,
}

impl ScratchDb {
    pub async fn new(purpose: &str, max_connections: u32) -> ScratchDb {
        let name = unique_name(purpose);
        let url = Db::create_scratch(&postgres_url(), &name).await.expect("create a scratch database");
        let db = Db::connect(&url, max_connections).await.expect("connect to the scratch database");
        ScratchDb { db, url, name, closed: false }
    }

    /// Another pool on the same database, for a test that needs separate connections.
    pub async fn pool(&self, max_connections: u32) -> sqlx::PgPool {
        Db::connect(&self.url, max_connections).await.expect("a second pool on the scratch database").pool
    }

    pub async fn close(mut self) {
        self.closed = true;
        self.db.pool.close().await;
        Db::drop_scratch(&postgres_url(), &self.name).await;
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let name = self.name.clone();
        // `WITH (FORCE)` ends the connections still open, ours and any process's.
        cleanup_blocking(async move { Db::drop_scratch(&postgres_url(), &name).await });
    }
}

/// Whether a database of this name exists on the test Postgres (a test that checks a
/// process made nothing).
pub async fn database_exists(name: &str) -> bool {
    let db = Db::connect(&postgres_url(), 1).await.expect("the test Postgres");
    let exists = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .expect("look up the database");
    db.pool.close().await;
    exists
}

/// A database name of the test's own for a process under test to create (`crm bootstrap`,
/// `crm up` on a server without the database); dropped, if it was made, when this goes out
/// of scope.
pub struct UnmadeDb {
    pub name: String,
    pub url: String,
}

impl UnmadeDb {
    pub fn new(purpose: &str) -> UnmadeDb {
        let name = unique_name(purpose);
        let url = crm_store::database::with_database(&postgres_url(), &name);
        UnmadeDb { name, url }
    }

    /// Creates it empty (no migrations), for a process under test to fill, e.g. `pg_restore`.
    pub async fn create_empty(&self) {
        Db::ensure_database(&self.url).await.expect("create the database");
    }

    /// A pool on it, once the process under test has made it.
    pub async fn connect(&self, max_connections: u32) -> Db {
        Db::connect(&self.url, max_connections).await.expect("connect to the database the process made")
    }
}

impl Drop for UnmadeDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        cleanup_blocking(async move { Db::drop_scratch(&postgres_url(), &name).await });
    }
}

/// A Redis key prefix of its own (`CRM_REDIS_PREFIX` of the processes a test starts); its
/// keys are deleted when this goes out of scope. On the machine's shared Redis by default;
/// [`TestPrefix::acl`] puts it on a private Redis with ACL users instead.
pub struct TestPrefix {
    name: String,
    /// the engine's URL
    url: String,
    /// the workers' URL (another ACL user on a private Redis)
    worker_url: String,
    /// the test's own URL, allowed everything
    admin_url: String,
    server: Option<crate::redis_server::AclRedis>,
    cluster: Option<crate::redis_cluster::RedisCluster>,
}

impl TestPrefix {
    pub fn new(purpose: &str) -> TestPrefix {
        let url = redis_url();
        TestPrefix {
            name: unique_name(purpose),
            worker_url: url.clone(),
            admin_url: url.clone(),
            url,
            server: None,
            cluster: None,
        }
    }

    /// A prefix on a private Redis with a password and the ACL users of `crm_queue::acl`:
    /// the engine and the workers each connect as their own user, as in production.
    pub async fn acl(purpose: &str) -> TestPrefix {
        let name = unique_name(purpose);
        let server = crate::redis_server::AclRedis::start(&name).await;
        TestPrefix {
            name,
            url: server.engine_url.clone(),
            worker_url: server.worker_url.clone(),
            admin_url: server.admin_url.clone(),
            server: Some(server),
            cluster: None,
        }
    }

    /// A prefix on a private three-master Redis Cluster: every process gets its
    /// `redis+cluster://` URL.
    pub async fn cluster(purpose: &str) -> TestPrefix {
        let cluster = crate::redis_cluster::RedisCluster::start().await;
        TestPrefix {
            name: unique_name(purpose),
            url: cluster.url.clone(),
            worker_url: cluster.url.clone(),
            admin_url: cluster.url.clone(),
            server: None,
            cluster: Some(cluster),
        }
    }

    /// A prefix on a private Redis Cluster whose nodes hold the ACL users `crm redis-acl`
    /// prints for it: the engine and the workers each connect as their own user.
    pub async fn cluster_with_acl(purpose: &str) -> TestPrefix {
        let name = unique_name(purpose);
        let cluster = crate::redis_cluster::RedisCluster::start_with_acl(&name).await;
        TestPrefix {
            name,
            url: cluster.engine_url.clone(),
            worker_url: cluster.worker_url.clone(),
            admin_url: cluster.url.clone(),
            server: None,
            cluster: Some(cluster),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Points a `crm` process at this prefix, as its engine: the URL and the prefix together.
    pub fn point<'c>(&self, cmd: &'c mut std::process::Command) -> &'c mut std::process::Command {
        cmd.env("CRM_REDIS_URL", &self.url).env("CRM_REDIS_PREFIX", &self.name)
    }

    /// The engine's Redis URL.
    pub fn redis_url(&self) -> &str {
        &self.url
    }

    /// The workers' Redis URL.
    pub fn worker_redis_url(&self) -> &str {
        &self.worker_url
    }

    /// The private Redis Cluster behind this prefix, if it has one.
    pub fn redis_cluster(&self) -> Option<&crate::redis_cluster::RedisCluster> {
        self.cluster.as_ref()
    }

    /// The private Redis behind this prefix, if it has one.
    pub fn server(&self) -> Option<&crate::redis_server::AclRedis> {
        self.server.as_ref()
    }

    /// The queue streams under this prefix, with every right (to inspect or forge entries).
    pub async fn queue(&self) -> Queue {
        Queue::connect(&self.admin_url, &self.name).await.expect("redis is up")
    }

    /// A scheduler configuration whose every key is under this prefix.
    pub fn scheduler_config(&self) -> SchedulerConfig {
        SchedulerConfig::new(self.name.clone(), std::sync::Arc::new(crm_vault::Vault::ephemeral()))
    }

    /// A connection that reaches every key of this prefix: on a cluster, to the node
    /// serving the prefix's slot.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let url = match &self.cluster {
            Some(cluster) => cluster.node_serving(&Keys::new(&self.name).jobs).await,
            None => self.admin_url.clone(),
        };
        redis::Client::open(url.as_str())
            .expect("a valid redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis")
    }

    /// Every key under this prefix.
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.connection().await;
        keys_matching(&mut conn, &Keys::new(&self.name).all).await.expect("scan redis keys")
    }

    /// Redis forgets everything: a real FLUSHALL on a private Redis; on the shared one every
    /// key under this prefix is deleted (and nothing else), which to the processes of the
    /// test is the same. Returns how many keys there were.
    pub async fn clear(&self) -> usize {
        match (&self.server, &self.cluster) {
            (Some(server), _) => server.flushall().await,
            (_, Some(cluster)) => cluster.flushall().await,
            (None, None) => clear_prefix(&self.admin_url, &self.name).await,
        }
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        if self.server.is_some() || self.cluster.is_some() {
            // The private server goes with its data.
            return;
        }
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        cleanup_blocking(async move {
            clear_prefix(&url, &name).await;
        });
    }
}

/// Every key under `prefix` ([`Keys::all`]) on the test Redis, e.g. to check that a dropped
/// [`TestPrefix`] left none.
pub async fn keys_under(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(redis_url()).expect("a valid redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect to redis");
    keys_matching(&mut conn, &Keys::new(prefix).all).await.expect("scan redis keys")
}

/// SCAN rather than KEYS: the shared Redis may hold many keys of other runs, and KEYS
/// blocks the server while it walks them all.
async fn keys_matching(conn: &mut redis::aio::MultiplexedConnection, pattern: &str) -> redis::RedisResult<Vec<String>> {
    let mut cursor: u64 = 0;
    let mut all = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000).query_async(conn).await?;
        all.extend(keys);
        if next == 0 {
            return Ok(all);
        }
        cursor = next;
    }
}

async fn clear_prefix(url: &str, prefix: &str) -> usize {
    // The name comes from `unique_name`: no glob characters, so the pattern is exactly
    // this prefix's keys.
    debug_assert!(prefix.starts_with(TEST_NAME_PREFIX));
    let Ok(client) = redis::Client::open(url) else {
        return 0;
    };
    let Ok(Ok(mut conn)) =
        tokio::time::timeout(Duration::from_secs(5), client.get_multiplexed_async_connection()).await
    else {
        return 0;
    };
    let keys = keys_matching(&mut conn, &Keys::new(prefix).all).await.unwrap_or_default();
    let mut deleted = 0;
    for chunk in keys.chunks(500) {
        let n: usize = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await.unwrap_or(0);
        deleted += n;
    }
    deleted
}

/// A running scheduler on a scratch database and a prefix of its own: the admission door
/// triggers start runs through. Its tasks stop when the returned handle is shut down or
/// the test ends.
pub async fn scheduler(db: &ScratchDb, purpose: &str) -> (TestPrefix, crm_scheduler::Scheduler) {
    let prefix = TestPrefix::new(purpose);
    let scheduler = crm_scheduler::Scheduler::start(&db.db, prefix.redis_url(), prefix.scheduler_config())
        .await
        .expect("start a scheduler");
    (prefix, scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_never_an_installations() {
        let (a, b) = (unique_name("x"), unique_name("x"));
        assert_ne!(a, b);
        for name in [a, b] {
            assert!(name.starts_with(TEST_NAME_PREFIX), "{name}");
            // `crm` is the default database and key prefix of an installation.
            assert_ne!(name, "crm");
            assert!(!name.starts_with("crm:"), "{name}");
        }
    }

    #[test]
    #[should_panic(expected = "lower-case letters")]
    fn a_purpose_cannot_widen_the_key_pattern() {
        unique_name("a*");
    }
}
