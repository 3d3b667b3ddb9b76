//! A private `redis-server` for one test, run the way a production Redis should be: a
//! password on the default user and ACL users for the engine and the workers (from
//! `crm_queue::acl`), on a free loopback port, killed on drop. Tests that wipe Redis use it
//! for a real FLUSHALL, which the machine's shared Redis cannot take.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running private Redis with ACL users.
pub struct AclRedis {
    /// the engine's URL: `redis://crm-engine:…@127.0.0.1:PORT`
    pub engine_url: String,
    /// a worker's URL: `redis://crm-worker:…@127.0.0.1:PORT`
    pub worker_url: String,
    /// the default user's URL, for the test itself (inspection, FLUSHALL)
    pub admin_url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl AclRedis {
    /// Starts one whose users may use the keys of `prefix`.
    pub async fn start(prefix: &str) -> AclRedis {
        let dir = tempfile::tempdir().expect("temp dir");
        let pw = |who: &str| format!("{who}-{}", uuid::Uuid::new_v4().simple());
        let (admin_pw, engine_pw, worker_pw) = (pw("admin"), pw("engine"), pw("worker"));
        let acl = format!(
            "user default on >{admin_pw} ~* &* +@all\n{}\n{}\n",
            crm_queue::acl::engine_user("crm-engine", &engine_pw, prefix),
            crm_queue::acl::worker_user("crm-worker", &worker_pw, prefix),
        );
        let aclfile = dir.path().join("users.acl");
        std::fs::write(&aclfile, acl).expect("write the ACL file");
        // A free port can be taken between finding it and redis-server binding it (by another
        // test, or by an outgoing connection's source port): then redis-server exits, and
        // another port is tried.
        for _ in 0..5 {
            let port = crate::ports::free_port();
            let mut child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--aclfile")
                .arg(&aclfile)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed (Debian: redis-server)");
            let url = |user: &str, pw: &str| format!("redis://{user}:{pw}@127.0.0.1:{port}");
            if !answers_ping(&url("default", &admin_pw), || child.try_wait().ok().flatten().is_some()).await {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
            return AclRedis {
                engine_url: url("crm-engine", &engine_pw),
                worker_url: url("crm-worker", &worker_pw),
                admin_url: url("default", &admin_pw),
                child,
                _dir: dir,
            };
        }
        panic!("the private redis-server did not start on any of 5 free ports");
    }

    /// Everything gone, as after a restart without persistence; returns how many keys there were.
    pub async fn flushall(&self) -> usize {
        let client = redis::Client::open(self.admin_url.as_str()).expect("a valid URL");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let keys: usize = redis::cmd("DBSIZE").query_async(&mut conn).await.expect("DBSIZE");
        let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("FLUSHALL");
        keys
    }

    /// Commands the server refused for lack of permission (`ACL LOG`), one line each.
    pub async fn denials(&self) -> Vec<String> {
        let client = redis::Client::open(self.admin_url.as_str()).expect("a valid URL");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let log: Vec<redis::Value> = redis::cmd("ACL").arg("LOG").query_async(&mut conn).await.expect("ACL LOG");
        log.iter().map(|entry| format!("{entry:?}")).collect()
    }
}

impl Drop for AclRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the Redis at `url` answers PING within 5 s; false as soon as `exited` says its
/// server process is gone (a private one whose port was taken).
pub(crate) async fn answers_ping(url: &str, mut exited: impl FnMut() -> bool) -> bool {
    let client = redis::Client::open(url).expect("a valid URL");
    for _ in 0..100 {
        if exited() {
            return false;
        }
        if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
            let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
            if pong.is_ok() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
