//! Following one of the engine's server-sent event streams for as long as the bot runs.
//! Completions and notifications both arrive this way; they differ only in how a
//! reconnection picks up again, which each says through [`Resume`].

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::engine::EngineClient;

/// The engine sends keep-alive comments well inside this; silence this long means a dead
/// link that TCP has not noticed yet.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// One server-sent event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Incremental SSE parser: feed bytes, take complete events.
///
/// Bytes are kept until their line is complete, and a line is decoded as a whole: a chunk
/// may end inside a character (Cyrillic is two bytes in UTF-8), and decoding each chunk
/// on its own would turn both halves into replacement characters. Lines are read in place
/// and the buffer is compacted once per chunk, so a chunk of many events costs time in
/// proportion to its length.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    pending: SseEvent,
    has_data: bool,
}

impl SseParser {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(n) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&self.buf[start..start + n]);
            start += n + 1;
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                if self.has_data {
                    out.push(std::mem::take(&mut self.pending));
                } else {
                    self.pending = SseEvent::default();
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "id" => self.pending.id = Some(value.to_string()),
                "event" => self.pending.event = Some(value.to_string()),
                "data" => {
                    if self.has_data {
                        self.pending.data.push('\n');
                    }
                    self.pending.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        self.buf.drain(..start);
        out
    }
}

/// How a stream picks up after a reconnection. The default is a stream whose server serves
/// again whatever is still pending: every connection starts plainly and ids mean nothing.
pub trait Resume {
    /// Sent as `Last-Event-ID` when (re)connecting.
    fn last_event_id(&self) -> Option<&str> {
        None
    }

    /// An event carrying `id` has been handled.
    fn handled(&mut self, _id: &str) {}

    /// The engine refused to resume after [`Resume::last_event_id`] (it answered 400: an id
    /// from another installation, or a wiped Redis). True means the id is dropped and the
    /// stream reconnects at once without it; false treats it like any other refusal.
    fn forget(&mut self) -> bool {
        false
    }
}

/// For streams the engine re-serves while anything is pending.
pub struct Redelivered;

impl Resume for Redelivered {}

/// Follows `path` on the engine until `stop`, reconnecting with backoff, and hands every
/// event to `on_event` in order. `name` tells the streams apart in the log.
pub async fn follow(
    name: &'static str,
    engine: &EngineClient,
    path: &str,
    resume: &mut impl Resume,
    mut on_event: impl FnMut(&SseEvent),
    stop: &CancellationToken,
) {
    // Not the engine client's: its whole-request timeout would cut a healthy stream.
    let http = match reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).read_timeout(READ_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(stream = name, error = %e, "cannot build the event stream client");
            return;
        }
    };
    let url = format!("{}{path}", engine.base_url());
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut req = http.get(&url).bearer_auth(engine.token()).header("Accept", "text/event-stream");
        if let Some(id) = resume.last_event_id() {
            req = req.header("Last-Event-ID", id);
        }
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            r = req.send() => r,
        };
        match connected {
            Ok(resp) if resp.status().is_success() => {
                tracing::info!(stream = name, resume_after = ?resume.last_event_id(), "event stream connected");
                backoff = FIRST_BACKOFF;
                let mut body = resp.bytes_stream();
                let mut parser = SseParser::default();
                loop {
                    let chunk = tokio::select! {
                        () = stop.cancelled() => return,
                        c = body.next() => c,
                    };
                    let chunk = match chunk {
                        Some(Ok(c)) => c,
                        Some(Err(e)) => {
                            tracing::warn!(stream = name, error = %e, "event stream broke; reconnecting");
                            break;
                        }
                        None => {
                            tracing::info!(stream = name, "event stream ended; reconnecting");
                            break;
                        }
                    };
                    for event in parser.feed(&chunk) {
                        on_event(&event);
                        if let Some(id) = &event.id {
                            resume.handled(id);
                        }
                    }
                }
            }
            Ok(resp) if resp.status() == reqwest::StatusCode::BAD_REQUEST && resume.last_event_id().is_some() => {
                let refused = resume.last_event_id().map(str::to_string);
                if resume.forget() {
                    tracing::warn!(
                        stream = name,
                        cursor = ?refused,
                        "the engine does not know the saved event id; starting from now"
                    );
                    continue;
                }
                tracing::warn!(stream = name, status = %resp.status(), "event stream refused; retrying");
            }
            Ok(resp) => tracing::warn!(stream = name, status = %resp.status(), "event stream refused; retrying"),
            Err(e) => tracing::debug!(stream = name, error = %e, "event stream not reachable; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\nid: 7\nevent: comp").is_empty());
        let events = p.feed(b"letion\ndata: {\"a\":\ndata: 1}\r\n\r\nid: 8\ndata: x\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(events[0].event.as_deref(), Some("completion"));
        assert_eq!(events[0].data, "{\"a\":\n1}");
        assert_eq!(events[1].data, "x");
    }

    #[test]
    fn a_character_split_across_chunks_arrives_whole() {
        let event = "id: 1-0\ndata: {\"rendered\":\"Сделка закрыта\"}\n\n".as_bytes();
        for cut in 0..event.len() {
            let mut p = SseParser::default();
            let mut events = p.feed(&event[..cut]);
            events.extend(p.feed(&event[cut..]));
            assert_eq!(events.len(), 1, "cut at {cut}");
            assert_eq!(events[0].data, "{\"rendered\":\"Сделка закрыта\"}", "cut at {cut}");
        }
    }

    #[test]
    fn a_chunk_of_many_events_yields_each_in_order() {
        let chunk: String =
            (0..5000).map(|i| format!("id: {i}-0\nevent: completion\ndata: {{\"n\":{i}}}\n\n")).collect();
        let events = SseParser::default().feed(chunk.as_bytes());
        assert_eq!(events.len(), 5000);
        assert!(events.iter().enumerate().all(|(i, e)| e.data == format!("{{\"n\":{i}}}")));
    }

    /// A cursor kept in memory, refused once as `stale`.
    #[derive(Default)]
    struct Memory {
        last: Option<String>,
    }

    impl Resume for Memory {
        fn last_event_id(&self) -> Option<&str> {
            self.last.as_deref()
        }
        fn handled(&mut self, id: &str) {
            self.last = Some(id.to_string());
        }
        fn forget(&mut self) -> bool {
            self.last = None;
            true
        }
    }

    /// A stream server that ends each response after the events `answer` picks for the
    /// `Last-Event-ID` it was sent, and records what it was sent.
    async fn serve(answer: fn(Option<&str>) -> Result<&'static str, StatusCode>) -> (String, Arc<Mutex<Vec<String>>>) {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().route(
            "/s",
            axum::routing::get(move |headers: HeaderMap| {
                let log = log.clone();
                async move {
                    let id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
                    log.lock().unwrap().push(id.unwrap_or("-").to_string());
                    match answer(id) {
                        Ok(body) => ([("content-type", "text/event-stream")], body).into_response(),
                        Err(status) => status.into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    async fn follow_until(url: &str, resume: &mut impl Resume, events: usize) -> Vec<String> {
        let engine = EngineClient::new(url, "t").unwrap();
        let stop = CancellationToken::new();
        let mut got = Vec::new();
        let run = follow(
            "test",
            &engine,
            "/s",
            resume,
            |e| {
                got.push(e.data.clone());
                if got.len() == events {
                    stop.cancel();
                }
            },
            &stop,
        );
        tokio::time::timeout(Duration::from_secs(10), run).await.expect("the follower stops when asked");
        got
    }

    #[tokio::test]
    async fn resumes_after_the_last_handled_event_and_drops_an_unknown_one() {
        let (url, seen) = serve(|id| match id {
            Some("stale") => Err(StatusCode::BAD_REQUEST),
            None => Ok(": keep-alive\n\nid: 1\ndata: a\n\n"),
            Some("1") => Ok("id: 2\ndata: b\n\n"),
            Some(_) => Err(StatusCode::CONFLICT),
        })
        .await;
        let mut cursor = Memory { last: Some("stale".into()) };
        assert_eq!(follow_until(&url, &mut cursor, 2).await, ["a", "b"]);
        assert_eq!(*seen.lock().unwrap(), ["stale", "-", "1"]);
        assert_eq!(cursor.last.as_deref(), Some("2"));
    }

    #[tokio::test]
    async fn redelivered_streams_reconnect_plainly_and_retry_refusals() {
        let (url, seen) = serve(|id| match id {
            None => Ok("id: 9\nevent: notification\ndata: x\n\n"),
            Some(_) => Err(StatusCode::BAD_REQUEST),
        })
        .await;
        assert_eq!(follow_until(&url, &mut Redelivered, 2).await, ["x", "x"]);
        assert_eq!(*seen.lock().unwrap(), ["-", "-"]);
    }
}
