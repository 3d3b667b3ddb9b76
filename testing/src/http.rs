//! Requests to a `crm serve` under test.

use reqwest::StatusCode;
use serde_json::Value;

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
