//! Requests to a `crm serve` under test, and a server for a step's outbound requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client for requests to a local `crm serve`; no request of a test waits forever.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("http client")
}

/// Sends and returns the status and the JSON body (`Value::Null` for an empty body). Every
/// answer of the API is JSON: any other body fails the test.
pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request to crm serve");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("response is not JSON ({status}): {}", String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

/// Sends a fresh `request()` until it is answered `want`, for at most `within`; returns the
/// last status. For a change made outside the engine's process (another engine, the CLI, an
/// operator's SQL), which the engine hears of from Postgres a moment after it commits.
pub async fn answered_within(
    within: std::time::Duration,
    want: StatusCode,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> StatusCode {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let status = request().send().await.expect("request to crm serve").status();
        if status == want || tokio::time::Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A one-route HTTP server on a free loopback port: `/` answers `hello`, `/away` redirects.
/// Counts the connections it accepts (one per request: it closes each), so a test can tell
/// how many requests reached it, or that none did.
pub async fn hello_server() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let reply = if request.starts_with("GET /away") {
                    "HTTP/1.1 302 Found\r\nlocation: http://example.com/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_string()
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello".to_string()
                };
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, accepted)
}
