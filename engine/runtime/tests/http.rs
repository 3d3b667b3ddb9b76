//! Outbound HTTP reaches only hosts granted as `http:HOST`, and never follows a redirect
//! (which could lead to a host that was not granted).

mod common;

use std::sync::Arc;

use common::{failure, input, output, run, runtime};
use crm_concepts::step::StepLimits;
use crm_memory::MemoryCrm;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A one-route HTTP server on a free loopback port: `/` answers `hello`, `/away` redirects.
async fn serve() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
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
    port
}

#[tokio::test]
async fn only_granted_hosts_are_reachable_and_redirects_are_not_followed() {
    let port = serve().await;
    let rt = runtime();
    let svc = Arc::new(MemoryCrm::empty());
    let url = format!("http://127.0.0.1:{port}/");

    let ok = run(
        &rt,
        crm_guests::HTTP_GET,
        input(json!({"url": url}), json!(null)),
        &["http:127.0.0.1"],
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    assert_eq!(output(&ok)["status"], 200);
    assert_eq!(output(&ok)["body"], "hello");

    let denied = run(
        &rt,
        crm_guests::HTTP_GET,
        input(json!({"url": url}), json!(null)),
        &["http:api.example.com"],
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    let e = failure(&denied);
    assert_eq!(e.code, "capability_denied");
    assert!(e.message.contains("`http:127.0.0.1`"), "{e}");

    let away = format!("http://127.0.0.1:{port}/away");
    let redirect = run(
        &rt,
        crm_guests::HTTP_GET,
        input(json!({"url": away}), json!(null)),
        &["http:127.0.0.1"],
        StepLimits::default(),
        svc.clone(),
    )
    .await;
    assert_eq!(output(&redirect)["status"], 302);
    assert_eq!(output(&redirect)["location"], "http://example.com/");

    let bad = run(
        &rt,
        crm_guests::HTTP_GET,
        input(json!({"url": "file:///etc/passwd"}), json!(null)),
        &["http:127.0.0.1"],
        StepLimits::default(),
        svc,
    )
    .await;
    let e = failure(&bad);
    assert!(e.message.contains("not http or https"), "{e}");
}
