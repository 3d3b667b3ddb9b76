//! A private three-master Redis Cluster for one test: three `redis-server --cluster-enabled
//! yes` on free loopback ports, joined by `redis-cli --cluster create`, with a password;
//! killed on drop. The engine and the workers reach it through a `redis+cluster://` URL,
//! either as the default user or, with [`RedisCluster::start_with_acl`], each as the ACL
//! user `crm redis-acl` prints for the installation.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::cluster::ClusterClient;

pub struct RedisCluster {
    /// `redis+cluster://:PASSWORD@127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`
    pub url: String,
    /// the nodes' `redis://:PASSWORD@127.0.0.1:P` URLs
    pub nodes: Vec<String>,
    /// the engine's URL: [`RedisCluster::url`], or as the ACL user `crm-engine`
    pub engine_url: String,
    /// the workers' URL: [`RedisCluster::url`], or as the ACL user `crm-worker`
    pub worker_url: String,
    password: String,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub async fn start() -> RedisCluster {
        RedisCluster::launch(None).await
    }

    /// The same with every node holding the ACL users `crm redis-acl` prints for the
    /// installation `prefix`: the engine and the workers connect as those.
    pub async fn start_with_acl(prefix: &str) -> RedisCluster {
        RedisCluster::launch(Some(prefix)).await
    }

    async fn launch(acl_prefix: Option<&str>) -> RedisCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let password = format!("cluster-{}", uuid::Uuid::new_v4().simple());
        let users = acl_prefix.map(|prefix| acl_users(prefix, &password, dir.path()));
        let mut children = Vec::new();
        let mut ports = Vec::new();
        for i in 0..3 {
            let node_dir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).expect("a node directory");
            let (child, port) = start_node(&node_dir, &password, users.as_ref()).await;
            children.push(child);
            ports.push(port);
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("redis://:{password}@127.0.0.1:{p}")).collect();
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let url = |user: &str, password: &str| format!("redis+cluster://{user}:{password}@{}", hosts.join(","));
        let (engine_url, worker_url) = match &users {
            Some(u) => (url("crm-engine", &u.engine_password), url("crm-worker", &u.worker_password)),
            None => (url("", &password), url("", &password)),
        };
        let cluster =
            RedisCluster { url: url("", &password), nodes, engine_url, worker_url, password, children, _dir: dir };
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&hosts)
            .args(["--cluster-replicas", "0", "--cluster-yes", "-a", &cluster.password, "--no-auth-warning"])
            .output()
            .expect("redis-cli is installed (Debian: redis-tools)");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        cluster.wait_ok().await;
        cluster
    }

    /// Until every node says `cluster_state:ok` and agrees on all 16384 slots.
    async fn wait_ok(&self) {
        for _ in 0..200 {
            let mut ok = true;
            for node in &self.nodes {
                let info = cluster_info(node).await.unwrap_or_default();
                ok &= info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384");
                ok &= info.contains("cluster_known_nodes:3");
            }
            if ok {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the test Redis Cluster did not become ready");
    }

    /// A cluster-aware connection for the test itself.
    pub async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        ClusterClient::new(self.nodes.clone())
            .expect("valid node URLs")
            .get_async_connection()
            .await
            .expect("connect to the cluster")
    }

    /// The slot of `key` and the URL of the node serving it.
    pub async fn slot_of(&self, key: &str) -> (u16, String) {
        let mut conn = self.connection().await;
        let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut conn).await.expect("KEYSLOT");
        let raw: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut conn).await.expect("SLOTS");
        let port = parse_slots(raw)
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, port)| port)
            .expect("every slot is served");
        (slot, format!("redis://:{}@127.0.0.1:{port}", self.password))
    }

    /// The URL of the node serving `key`.
    pub async fn node_serving(&self, key: &str) -> String {
        self.slot_of(key).await.1
    }

    /// Every node forgets everything; returns how many keys there were.
    pub async fn flushall(&self) -> usize {
        let mut total = 0;
        for node in &self.nodes {
            let client = redis::Client::open(node.as_str()).expect("a valid URL");
            let mut conn = client.get_multiplexed_async_connection().await.expect("connect to a node");
            let keys: usize = redis::cmd("DBSIZE").query_async(&mut conn).await.expect("DBSIZE");
            let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("FLUSHALL");
            total += keys;
        }
        total
    }

    /// Commands any node refused for lack of permission (`ACL LOG`), one line each.
    pub async fn denials(&self) -> Vec<String> {
        let mut denials = Vec::new();
        for node in &self.nodes {
            let client = redis::Client::open(node.as_str()).expect("a valid URL");
            let mut conn = client.get_multiplexed_async_connection().await.expect("connect to a node");
            let log: Vec<redis::Value> = redis::cmd("ACL").arg("LOG").query_async(&mut conn).await.expect("ACL LOG");
            denials.extend(log.iter().map(|entry| format!("{node}: {entry:?}")));
        }
        denials
    }

    /// How many keys each node holds, by node URL.
    pub async fn keys_per_node(&self) -> Vec<(String, usize)> {
        let mut counts = Vec::new();
        for node in &self.nodes {
            let client = redis::Client::open(node.as_str()).expect("a valid URL");
            let mut conn = client.get_multiplexed_async_connection().await.expect("connect to a node");
            let n: usize = redis::cmd("DBSIZE").query_async(&mut conn).await.expect("DBSIZE");
            counts.push((node.clone(), n));
        }
        counts
    }
}

/// `CLUSTER SLOTS` as (first slot, last slot, master's port).
fn parse_slots(raw: redis::Value) -> Vec<(u16, u16, u16)> {
    let redis::Value::Array(ranges) = raw else { return Vec::new() };
    ranges
        .into_iter()
        .filter_map(|range| {
            let redis::Value::Array(items) = range else { return None };
            let int = |v: &redis::Value| match v {
                redis::Value::Int(n) => u16::try_from(*n).ok(),
                _ => None,
            };
            let (start, end) = (int(items.first()?)?, int(items.get(1)?)?);
            let redis::Value::Array(master) = items.get(2)? else { return None };
            Some((start, end, int(master.get(1)?)?))
        })
        .collect()
}

/// The ACL file of a cluster whose users are the ones `crm redis-acl` prints.
struct AclUsers {
    file: std::path::PathBuf,
    engine_password: String,
    worker_password: String,
}

/// Runs `crm redis-acl` for `prefix` and writes its lines, after a default user with
/// `password` (the test's own, and the nodes' among themselves), to an ACL file in `dir`.
fn acl_users(prefix: &str, password: &str, dir: &std::path::Path) -> AclUsers {
    let pw = |who: &str| format!("{who}-{}", uuid::Uuid::new_v4().simple());
    let (engine_password, worker_password) = (pw("engine"), pw("worker"));
    let out = crate::process::crm()
        .env("CRM_REDIS_PREFIX", prefix)
        .env("CRM_REDIS_ENGINE_PASSWORD", &engine_password)
        .env("CRM_REDIS_WORKER_PASSWORD", &worker_password)
        .arg("redis-acl")
        .output()
        .expect("run crm redis-acl");
    assert!(out.status.success(), "crm redis-acl: {}", String::from_utf8_lossy(&out.stderr));
    let file = dir.join("users.acl");
    let lines = format!("user default on >{password} ~* &* +@all\n{}", String::from_utf8_lossy(&out.stdout));
    std::fs::write(&file, lines).expect("write the ACL file");
    AclUsers { file, engine_password, worker_password }
}

async fn cluster_info(node: &str) -> Option<String> {
    let client = redis::Client::open(node).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn).await.ok()
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts one node on free ports and waits until it answers. As with a private
/// [`crate::redis_server::AclRedis`], a port can be taken between finding it and
/// redis-server binding it; redis-server then exits, and other ports are tried.
async fn start_node(dir: &std::path::Path, password: &str, users: Option<&AclUsers>) -> (Child, u16) {
    use crate::ports::free_port;
    use crate::redis_server::answers_ping;
    for _ in 0..5 {
        let (port, bus) = (free_port(), free_port());
        // what a node that exited may have written about itself
        let _ = std::fs::remove_file(dir.join("nodes.conf"));
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            // The bus port defaults to port + 10000, which may be taken or past 65535.
            .args(["--cluster-enabled", "yes", "--cluster-port", &bus.to_string()])
            .args(["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"])
            .args(["--masterauth", password])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match users {
            // The default user's password is in the ACL file, with the others.
            Some(users) => cmd.arg("--aclfile").arg(&users.file),
            None => cmd.args(["--requirepass", password]),
        };
        let mut child = cmd.spawn().expect("redis-server is installed (Debian: redis-server)");
        let url = format!("redis://:{password}@127.0.0.1:{port}");
        if answers_ping(&url, || child.try_wait().ok().flatten().is_some()).await {
            return (child, port);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("a redis-server of the test cluster did not start on any of 5 pairs of free ports");
}
