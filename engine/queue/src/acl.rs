//! Redis ACL users for an installation: what the engine and the workers may do with their
//! Redis, and nothing more (Redis 6+). `crm redis-acl` prints these lines for an
//! installation's prefix; the recovery tests run the engine and workers as these users.
//!
//! A worker may take, hold and finish jobs and say it is alive: read the jobs stream through
//! its consumer group, claim and acknowledge entries, recreate the group after a wipe, and
//! write its heartbeat. It cannot add a job, read completions, or touch any other key: with
//! a worker's Redis password one can at most disturb delivery, which the engine's lost-step
//! sweep repairs. (Results go to the engine over HTTP, not through Redis.)
//!
//! The engine may use every stream, set and marker under the prefix, and no command that
//! reaches beyond it (no FLUSHALL, KEYS, CONFIG, DEBUG, scripting or pub/sub).

use sha2::{Digest, Sha256};

use crate::keys::Keys;

/// Commands every client needs to connect and stay connected (AUTH, HELLO, PING, CLIENT
/// SETNAME/SETINFO…), by category so the line works on every Redis from 6 on; and CLUSTER
/// SLOTS, which a Redis Cluster client reads to learn which node serves the installation's
/// slot.
const CONNECTION: &str = "+@connection -@admin -@dangerous +cluster|slots";

/// What a worker runs against the jobs stream and the heartbeat set.
const WORKER: &str = "+multi +exec +discard +xreadgroup +xautoclaim +xclaim +xack +xdel +xgroup|create +zadd +zrem";

/// What the engine runs against every key of the installation.
const ENGINE: &str = "+multi +exec +discard +xadd +xread +xreadgroup +xrange +xrevrange +xlen +xpending +xinfo|stream +xinfo|groups \
+xgroup|create +xgroup|createconsumer +xack +xdel +xclaim +xautoclaim +xtrim +set +get +del +exists +expire +pexpire \
+zadd +zrem +zrange +zrangebyscore +zremrangebyscore +zcard +zscore +scan";

/// The ACL line (`user …`, as in an ACL file or `ACL SETUSER`) of the engine's user. The
/// password appears only as its SHA-256 (`#…`), so an ACL file holds no usable secret.
pub fn engine_user(name: &str, password: &str, prefix: &str) -> String {
    let keys = Keys::new(prefix);
    let hash = hashed(password);
    format!("user {name} on #{hash} resetkeys ~{} resetchannels -@all {CONNECTION} {ENGINE}", keys.all)
}

/// The ACL line of a worker's user: the jobs stream and the heartbeat set, nothing else.
pub fn worker_user(name: &str, password: &str, prefix: &str) -> String {
    let keys = Keys::new(prefix);
    let hash = hashed(password);
    format!(
        "user {name} on #{hash} resetkeys ~{} ~{} resetchannels -@all {CONNECTION} {WORKER}",
        keys.jobs, keys.workers
    )
}

/// How Redis stores a password: hex SHA-256.
fn hashed(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_is_fenced_to_the_installation_and_its_role() {
        let engine = engine_user("crm-engine", "e-pass", "crm");
        let (head, rules) = engine.split_once(" resetkeys ").unwrap();
        assert_eq!(head, format!("user crm-engine on #{}", hashed("e-pass")));
        assert!(!engine.contains("e-pass"), "the password is only hashed: {engine}");
        assert!(rules.starts_with("~{crm}:* resetchannels -@all "), "{engine}");
        let worker = worker_user("crm-worker", "w-pass", "crm");
        assert!(worker.contains("~{crm}:jobs ~{crm}:workers resetchannels -@all"));
        assert!(!worker.contains("xadd") && !worker.contains("+get"), "{worker}");
        for line in [engine, worker] {
            for forbidden in ["flushall", "keys ", "config", "@all ", "eval", "publish"] {
                assert!(!line.contains(&format!("+{forbidden}")), "{line}");
            }
        }
    }
}
