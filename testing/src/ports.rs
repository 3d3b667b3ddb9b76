//! Loopback ports for the servers a test starts. A port found free here can be taken by
//! another process before the server binds it: whoever starts a server on one notices it
//! exiting and tries another (`redis_server`, `redis_cluster`, the webhook bot's test).

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// `127.0.0.1:PORT` with a [`free_port`].
pub fn free_address() -> String {
    format!("127.0.0.1:{}", free_port())
}
