//! Where Redis is and how to talk to it: one server, or a Redis Cluster.
//!
//! `CRM_REDIS_URL` picks the mode. `redis://…` / `rediss://…` (and `redis+unix://…`) is one
//! server. `redis+cluster://[user:password@]host:port[,host:port…]` (or `rediss+cluster://`
//! for TLS) is a cluster, seeded by the listed nodes (one reachable node is enough; the rest
//! is discovered). Every key of an installation carries the same hash tag (see [`Keys`]), so
//! all of them live in one slot and pipelines and MULTI/EXEC work on a cluster as on one
//! server.
//!
//! [`Keys`]: crate::Keys

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, Pipeline, RedisError, RedisFuture, Value};

/// How long one command may wait for its answer (the redis crate's own default for a single
/// server); blocking reads use connections without one.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

const CLUSTER_SCHEMES: [(&str, &str); 2] = [("redis+cluster", "redis"), ("rediss+cluster", "rediss")];

/// A Redis deployment, from its URL.
#[derive(Clone)]
pub enum Redis {
    Server(Client),
    Cluster(Box<ClusterClient>),
}

/// A connection to either kind; cheap to clone, multiplexed, reconnecting.
#[derive(Clone)]
pub enum Connection {
    Server(ConnectionManager),
    Reader(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Redis {
    /// Parses `url` (see the module docs). Errors never print the password.
    pub fn open(url: &str) -> Result<Redis, RedisError> {
        match cluster_nodes(url)? {
            Some(nodes) => {
                let client = ClusterClient::builder(nodes)
                    .response_timeout(RESPONSE_TIMEOUT)
                    // Retries after MOVED/ASK or a failover take their own time; each
                    // attempt is bounded, and blocking reads must not be cut short.
                    .overall_response_timeout(None)
                    .build()?;
                Ok(Redis::Cluster(Box::new(client)))
            }
            None => Ok(Redis::Server(Client::open(url)?)),
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Redis::Cluster(_))
    }

    /// A connection for ordinary commands, each answered within a bounded time.
    pub async fn connect(&self) -> Result<Connection, RedisError> {
        match self {
            Redis::Server(client) => Ok(Connection::Server(ConnectionManager::new(client.clone()).await?)),
            Redis::Cluster(client) => Ok(Connection::Cluster(
                client
                    .get_async_connection_with_config(ClusterConfig::new().set_response_timeout(RESPONSE_TIMEOUT))
                    .await?,
            )),
        }
    }

    /// A connection for blocking reads: no response timeout (the BLOCK time bounds the
    /// wait), and its own socket(s), since a BLOCK holds its connection for its whole
    /// duration and would stall every command multiplexed behind it.
    pub async fn connect_blocking(&self) -> Result<Connection, RedisError> {
        match self {
            Redis::Server(client) => {
                let config = ConnectionManagerConfig::new().set_response_timeout(None);
                Ok(Connection::Server(ConnectionManager::new_with_config(client.clone(), config).await?))
            }
            Redis::Cluster(client) => {
                Ok(Connection::Cluster(client.get_async_connection_with_config(ClusterConfig::new()).await?))
            }
        }
    }

    /// One fresh connection and a PING, which answers only once any login the URL carries
    /// has worked: a check, with no reconnecting in between to hide the first error.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = match self {
            Redis::Server(client) => Connection::Reader(client.get_multiplexed_async_connection().await?),
            Redis::Cluster(_) => self.connect().await?,
        };
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// A plain multiplexed connection without a response timeout, for a long-lived reader
    /// that reconnects by itself.
    pub async fn connect_reader(&self) -> Result<Connection, RedisError> {
        match self {
            Redis::Server(client) => Ok(Connection::Reader(
                client
                    .get_multiplexed_async_connection_with_config(
                        &redis::AsyncConnectionConfig::new().set_response_timeout(None),
                    )
                    .await?,
            )),
            Redis::Cluster(_) => self.connect_blocking().await,
        }
    }
}

/// The seed nodes of a `redis+cluster://` URL as plain node URLs, or `None` for a URL of
/// one server.
fn cluster_nodes(url: &str) -> Result<Option<Vec<String>>, RedisError> {
    let Some((scheme, rest)) = url.split_once("://") else { return Ok(None) };
    let Some(&(_, node_scheme)) = CLUSTER_SCHEMES.iter().find(|(s, _)| s.eq_ignore_ascii_case(scheme)) else {
        return Ok(None);
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|host| format!("{node_scheme}://{userinfo}{host}{tail}"))
        .collect();
    if nodes.is_empty() {
        return Err(RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "a redis+cluster:// URL names at least one node (host:port[,host:port…])",
        )));
    }
    Ok(Some(nodes))
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Server(c) => c.req_packed_command(cmd),
            Connection::Reader(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Server(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Reader(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Server(c) => c.get_db(),
            Connection::Reader(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cluster_nodes;

    #[test]
    fn a_cluster_url_lists_its_seed_nodes() {
        assert_eq!(cluster_nodes("redis://h:6379").unwrap(), None);
        assert_eq!(cluster_nodes("redis+unix:///run/redis.sock").unwrap(), None);
        assert_eq!(
            cluster_nodes("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001").unwrap().unwrap(),
            vec!["redis://:pw@10.0.0.1:7000", "redis://:pw@10.0.0.2:7001"]
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://u:p@a:1/?protocol=resp3").unwrap().unwrap(),
            vec!["rediss://u:p@a:1/?protocol=resp3"]
        );
        assert!(cluster_nodes("redis+cluster://").is_err());
    }
}
