//! How the engine serves: one listener for the API and whatever the process serves beside
//! it, each connection with its peer's address, every write sent at once.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};

/// Serves `app` (the API, with whatever else the process serves beside it) on `listener`
/// until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connection info gives the per-address budgets their key.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(accepting(listener), app).with_graceful_shutdown(shutdown).await
}

/// `listener`, with Nagle's algorithm off on every connection it accepts. With it on, a
/// small write waits while an earlier one is unacknowledged, and a client that only reads
/// (an event stream such as `/api/completions`) may hold its acknowledgement back for up to
/// 40 ms: under load, a completion's event waited that long behind the one before it
/// (`docs/performance.md`, the twentieth sitting).
fn accepting(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    listener.tap_io(send_at_once)
}

fn send_at_once(tcp: &mut TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot turn Nagle's algorithm off on a connection");
    }
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    use super::*;

    #[tokio::test]
    async fn every_accepted_connection_sends_its_writes_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = accepting(listener);
        for _ in 0..2 {
            let _client = TcpStream::connect(addr).await.unwrap();
            let (accepted, peer) = listener.accept().await;
            assert_eq!(peer.ip(), addr.ip());
            assert!(accepted.nodelay().unwrap(), "Nagle's algorithm is still on for a connection from {peer}");
        }
    }
}
