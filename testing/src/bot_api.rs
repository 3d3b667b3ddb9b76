//! A Bot-API-compatible server on loopback, for tests and `crm bench bot`: it implements the
//! methods the bot uses (getMe, getUpdates with real long polling, sendMessage,
//! editMessageText, answerCallbackQuery, setMyCommands, getMyCommands, deleteWebhook,
//! setWebhook, getWebhookInfo, sendDocument, getFile and the file download path
//! `/file/bot<token>/<path>`) with Telegram's JSON shapes and error texts, records every
//! call, and lets the caller play the users: inject messages, documents, edits and button
//! presses.
//!
//! It checks what Telegram checks (text length in UTF-16 units, `callback_data` ≤ 64
//! bytes, known chats and messages, one answer per callback query), and can enforce a
//! per-chat flood limit with `429 retry after`, so a bot that misbehaves fails here the way
//! it would fail in production.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crm_bot::callback::MAX_CALLBACK_DATA;
use crm_bot::text::{MESSAGE_LIMIT, utf16_len};

/// A Telegram user the caller plays.
#[derive(Debug, Clone)]
pub struct TgUser {
    pub id: i64,
    pub first_name: String,
    pub username: Option<String>,
    /// Telegram's `language_code` for the user's app (`en` unless set)
    pub language_code: String,
}

impl TgUser {
    pub fn new(id: i64, first_name: &str) -> TgUser {
        TgUser { id, first_name: first_name.into(), username: None, language_code: "en".into() }
    }

    /// The same user with their Telegram app in another language (`ru`).
    pub fn speaking(mut self, language_code: &str) -> TgUser {
        self.language_code = language_code.into();
        self
    }

    fn json(&self) -> Value {
        let mut v =
            json!({"id": self.id, "is_bot": false, "first_name": self.first_name, "language_code": self.language_code});
        if let Some(u) = &self.username {
            v["username"] = json!(u);
        }
        v
    }

    fn private_chat(&self) -> Value {
        let mut v = json!({"id": self.id, "type": "private", "first_name": self.first_name});
        if let Some(u) = &self.username {
            v["username"] = json!(u);
        }
        v
    }
}

/// One request the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    /// position in the call log, from 1
    pub seq: u64,
    pub method: String,
    pub params: Value,
    /// the `result` returned, or `None` when the call failed
    pub result: Option<Value>,
    pub error: Option<String>,
    pub at: Instant,
}

impl Call {
    pub fn chat_id(&self) -> Option<i64> {
        as_i64(self.params.get("chat_id")?)
    }
    pub fn text(&self) -> &str {
        self.params.get("text").and_then(Value::as_str).unwrap_or("")
    }
    pub fn message_id(&self) -> Option<i64> {
        match self.method.as_str() {
            "editMessageText" => as_i64(self.params.get("message_id")?),
            _ => self.result.as_ref()?.get("message_id")?.as_i64(),
        }
    }
    /// The inline buttons as (label, callback_data), row by row flattened.
    pub fn buttons(&self) -> Vec<(String, String)> {
        let markup = match self.params.get("reply_markup") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let mut out = Vec::new();
        for row in markup.get("inline_keyboard").and_then(Value::as_array).into_iter().flatten() {
            for b in row.as_array().into_iter().flatten() {
                let text = b.get("text").and_then(Value::as_str).unwrap_or_default();
                let data = b.get("callback_data").and_then(Value::as_str).unwrap_or_default();
                out.push((text.to_string(), data.to_string()));
            }
        }
        out
    }
    /// The file of a sendDocument call: (file name, content).
    pub fn document(&self) -> Option<(String, String)> {
        let d = match self.params.get("document")? {
            Value::String(s) => self.params.get(s.strip_prefix("attach://")?)?,
            d => d,
        };
        Some((d.get("file_name")?.as_str()?.to_string(), d.get("content")?.as_str()?.to_string()))
    }
    /// A message or edit that landed in `chat`.
    pub fn is_reply_to(&self, chat: i64) -> bool {
        self.result.is_some()
            && matches!(self.method.as_str(), "sendMessage" | "editMessageText")
            && self.chat_id() == Some(chat)
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

struct StoredMessage {
    text: String,
    markup: Value,
    json: Value,
}

struct Inner {
    next_update_id: i64,
    /// with a webhook set, updates are POSTed here instead of waiting for getUpdates
    webhook_secret: String,
    /// updates not yet confirmed by an offset, oldest first
    updates: Vec<Value>,
    calls: Vec<Call>,
    chats: HashMap<i64, TgUser>,
    /// group chats someone wrote in: id → the chat object
    groups: HashMap<i64, Value>,
    next_message_id: HashMap<i64, i64>,
    messages: HashMap<(i64, i64), StoredMessage>,
    /// callback query id → answered?
    callback_queries: HashMap<String, bool>,
    next_callback: u64,
    commands: Value,
    webhook_url: String,
    last_delivery: HashMap<i64, Instant>,
    flood_interval: Option<Duration>,
    /// files users sent or the bot uploaded: file_id → (file_path, content)
    files: HashMap<String, (String, Vec<u8>)>,
}

struct Shared {
    token: String,
    bot: Value,
    inner: Mutex<Inner>,
    updates_version: watch::Sender<u64>,
    calls_version: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the log inconsistent in a way that
        // matters to a test; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct LocalBotApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for LocalBotApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

impl LocalBotApi {
    /// Starts the server on 127.0.0.1 with a random port. The bot id is the number before
    /// the `:` of `token`, as with real tokens.
    pub async fn start(token: &str) -> std::io::Result<LocalBotApi> {
        let bot_id = token.split(':').next().and_then(|s| s.parse::<i64>().ok()).unwrap_or(1);
        let (updates_version, _) = watch::channel(0);
        let (calls_version, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            token: token.to_string(),
            bot: json!({"id": bot_id, "is_bot": true, "first_name": "CRM", "username": "crm_local_bot"}),
            inner: Mutex::new(Inner {
                next_update_id: 1,
                webhook_secret: String::new(),
                updates: Vec::new(),
                calls: Vec::new(),
                chats: HashMap::new(),
                groups: HashMap::new(),
                next_message_id: HashMap::new(),
                messages: HashMap::new(),
                callback_queries: HashMap::new(),
                next_callback: 1,
                commands: json!([]),
                webhook_url: String::new(),
                last_delivery: HashMap::new(),
                flood_interval: None,
                files: HashMap::new(),
            }),
            updates_version,
            calls_version,
        });
        let app = Router::new()
            .route("/{bot}/{method}", axum::routing::any(handle))
            .route("/file/{bot}/{*path}", axum::routing::get(download))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let serve = axum::serve(listener, app);
        let deliver = deliver_to_webhook(shared.clone());
        let server = tokio::spawn(async move {
            tokio::select! {
                r = serve => if let Err(e) = r {
                    tracing::error!(error = %e, "local Bot API server stopped");
                },
                () = deliver => {}
            }
        });
        Ok(LocalBotApi { addr, shared, server })
    }

    /// The bot token this server accepts (`CRM_BOT_TOKEN`).
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The base URL to give the bot (`CRM_BOT_API_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn bot_username(&self) -> &str {
        self.shared.bot["username"].as_str().unwrap_or_default()
    }

    /// Makes the server answer `429 retry after` to a message that reaches a chat sooner
    /// than `interval` after the previous one.
    pub fn set_flood_interval(&self, interval: Option<Duration>) {
        self.shared.lock().flood_interval = interval;
    }

    fn push_update(&self, mut update: Value) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            let id = inner.next_update_id;
            inner.next_update_id += 1;
            update["update_id"] = json!(id);
            inner.updates.push(update);
            id
        };
        self.shared.updates_version.send_modify(|v| *v += 1);
        id
    }

    fn next_message_id(inner: &mut Inner, chat: i64) -> i64 {
        let next = inner.next_message_id.entry(chat).or_insert(1);
        let id = *next;
        *next += 1;
        id
    }

    /// `from` writes `text` in their private chat with the bot; returns the message id.
    pub fn send_text(&self, from: &TgUser, text: &str) -> i64 {
        let mut message = json!({"from": from.json(), "chat": from.private_chat(), "date": now_unix(), "text": text});
        if text.starts_with('/') {
            let len = text.split_whitespace().next().map_or(0, utf16_len);
            message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": len}]);
        }
        self.push_message(from, "message", message)
    }

    /// `from` writes `text` in the group chat `group` (a negative id) that the bot is a
    /// member of; returns the message id.
    pub fn send_group_text(&self, from: &TgUser, group: i64, title: &str, text: &str) -> i64 {
        let chat = json!({"id": group, "type": "group", "title": title});
        let mut message = json!({"from": from.json(), "chat": chat.clone(), "date": now_unix(), "text": text});
        if text.starts_with('/') {
            let len = text.split_whitespace().next().map_or(0, utf16_len);
            message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": len}]);
        }
        let id = {
            let mut inner = self.shared.lock();
            inner.groups.insert(group, chat);
            Self::next_message_id(&mut inner, group)
        };
        message["message_id"] = json!(id);
        self.push_update(json!({ "message": message }));
        id
    }

    /// `from` sends something that is not text (a sticker).
    pub fn send_sticker(&self, from: &TgUser) -> i64 {
        let message = json!({"from": from.json(), "chat": from.private_chat(), "date": now_unix(), "sticker": {
            "file_id": "sticker-1", "file_unique_id": "s1", "type": "regular", "width": 512, "height": 512,
            "is_animated": false, "is_video": false}});
        self.push_message(from, "message", message)
    }

    /// `from` sends a file as a document (with `caption`, if any); returns the message id.
    pub fn send_document(&self, from: &TgUser, file_name: &str, content: &[u8], caption: Option<&str>) -> i64 {
        let file_id = self.store_file(file_name, content.to_vec());
        let mut message = json!({"from": from.json(), "chat": from.private_chat(), "date": now_unix(),
            "document": document_json(&file_id, file_name, content.len())});
        if let Some(c) = caption {
            message["caption"] = json!(c);
        }
        self.push_message(from, "message", message)
    }

    fn store_file(&self, file_name: &str, content: Vec<u8>) -> String {
        let mut inner = self.shared.lock();
        let n = inner.files.len() + 1;
        let file_id = format!("file-{n}");
        let extension = file_name.rsplit_once('.').map_or("", |(_, e)| e);
        inner.files.insert(file_id.clone(), (format!("documents/file_{n}.{extension}"), content));
        file_id
    }

    /// The content of a file by its `file_id` (one a user sent, or one the bot uploaded:
    /// the `document.file_id` of a sendDocument result).
    pub fn file(&self, file_id: &str) -> Option<Vec<u8>> {
        self.shared.lock().files.get(file_id).map(|(_, c)| c.clone())
    }

    fn push_message(&self, from: &TgUser, kind: &str, mut message: Value) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            inner.chats.insert(from.id, from.clone());
            Self::next_message_id(&mut inner, from.id)
        };
        message["message_id"] = json!(id);
        self.push_update(json!({ kind: message }));
        id
    }

    /// `from` edits their earlier message `message_id` to `text`.
    pub fn edit_text(&self, from: &TgUser, message_id: i64, text: &str) {
        let now = now_unix();
        let message = json!({"message_id": message_id, "from": from.json(), "chat": from.private_chat(),
            "date": now, "edit_date": now, "text": text});
        self.push_update(json!({"edited_message": message}));
    }

    /// `from` presses a button with `data` under the bot's message `message_id`; returns
    /// the callback query id.
    pub fn press(&self, from: &TgUser, message_id: i64, data: &str) -> String {
        let (id, message) = {
            let mut inner = self.shared.lock();
            let id = format!("cbq-{}", inner.next_callback);
            inner.next_callback += 1;
            inner.callback_queries.insert(id.clone(), false);
            let message = inner.messages.get(&(from.id, message_id)).map(|m| m.json.clone()).unwrap_or_else(
                // A message Telegram no longer has: it still reports where it was.
                || json!({"chat": from.private_chat(), "message_id": message_id, "date": 0}),
            );
            (id, message)
        };
        self.push_update(json!({"callback_query": {"id": id, "from": from.json(), "message": message,
            "chat_instance": format!("ci-{}", from.id), "data": data}}));
        id
    }

    /// `from` presses a button with `data` under the bot's message `message_id` in group
    /// `group` (anyone in a group can press any button there); returns the callback query id.
    pub fn press_in_group(&self, from: &TgUser, group: i64, message_id: i64, data: &str) -> String {
        let (id, message) = {
            let mut inner = self.shared.lock();
            let id = format!("cbq-{}", inner.next_callback);
            inner.next_callback += 1;
            inner.callback_queries.insert(id.clone(), false);
            let message = inner.messages.get(&(group, message_id)).map(|m| m.json.clone()).unwrap_or_else(|| {
                json!({"chat": {"id": group, "type": "group", "title": "group"}, "message_id": message_id, "date": 0})
            });
            (id, message)
        };
        self.push_update(json!({"callback_query": {"id": id, "from": from.json(), "message": message,
            "chat_instance": format!("ci-{group}"), "data": data}}));
        id
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The number of calls so far; pass it to `wait_for` to look only at later calls.
    pub fn seq(&self) -> u64 {
        self.shared.lock().calls.len() as u64
    }

    /// Whether the callback query was answered.
    pub fn answered(&self, callback_id: &str) -> bool {
        self.shared.lock().callback_queries.get(callback_id).copied().unwrap_or(false)
    }

    /// The current text of a message the bot sent.
    pub fn message_text(&self, chat: i64, message_id: i64) -> Option<String> {
        self.shared.lock().messages.get(&(chat, message_id)).map(|m| m.text.clone())
    }

    /// Updates not yet confirmed by the bot.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }

    /// Waits for the first call after `since` that `pred` accepts.
    pub async fn wait_for(&self, since: u64, timeout: Duration, pred: impl Fn(&Call) -> bool) -> Result<Call, String> {
        let deadline = Instant::now() + timeout;
        let mut version = self.shared.calls_version.subscribe();
        loop {
            {
                let inner = self.shared.lock();
                if let Some(c) = inner.calls.iter().skip(since as usize).find(|c| pred(c)) {
                    return Ok(c.clone());
                }
            }
            match tokio::time::timeout_at(deadline, version.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    let inner = self.shared.lock();
                    let log: Vec<String> = inner
                        .calls
                        .iter()
                        .skip(since as usize)
                        .filter(|c| c.method != "getUpdates")
                        .map(|c| format!("{} {}", c.method, c.params))
                        .collect();
                    return Err(format!("no matching call within {timeout:?}; calls since: {log:#?}"));
                }
            }
        }
    }

    /// The next message or edit the bot makes in `chat` after call `since`.
    pub async fn reply(&self, chat: i64, since: u64, timeout: Duration) -> Result<Call, String> {
        self.wait_for(since, timeout, |c| c.is_reply_to(chat)).await
    }
}

fn ok(result: Value) -> Response {
    (StatusCode::OK, axum::Json(json!({"ok": true, "result": result}))).into_response()
}

fn fail(status: StatusCode, description: &str) -> Response {
    (status, axum::Json(json!({"ok": false, "error_code": status.as_u16(), "description": description})))
        .into_response()
}

fn bad(description: &str) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, format!("Bad Request: {description}"))
}

type Outcome = Result<Value, (StatusCode, String)>;

const METHODS: &[&str] = &[
    "getUpdates",
    "getMe",
    "deleteWebhook",
    "setWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "getMyCommands",
    "sendMessage",
    "editMessageText",
    "answerCallbackQuery",
    "sendDocument",
    "getFile",
];

/// Telegram's limits on files: bots download up to 20 MB and upload up to 50 MB.
const DOWNLOAD_LIMIT: usize = 20 << 20;
const UPLOAD_LIMIT: usize = 50 << 20;

fn document_json(file_id: &str, file_name: &str, size: usize) -> Value {
    let mime = if file_name.to_ascii_lowercase().ends_with(".csv") { "text/csv" } else { "application/octet-stream" };
    json!({"file_id": file_id, "file_unique_id": format!("u{file_id}"), "file_name": file_name,
        "mime_type": mime, "file_size": size})
}

/// `GET /file/bot<token>/<file_path>`: a file's content, as Telegram serves it after getFile.
async fn download(State(shared): State<Arc<Shared>>, Path((bot, path)): Path<(String, String)>) -> Response {
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        return fail(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let inner = shared.lock();
    match inner.files.values().find(|(p, _)| *p == path) {
        Some((_, content)) => (StatusCode::OK, content.clone()).into_response(),
        None => fail(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        return fail(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let mut params = serde_json::Map::new();
    for (k, v) in query {
        params.insert(k, Value::String(v));
    }
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !body.is_empty() {
        if is_json {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) => params.extend(map),
                _ => return fail(StatusCode::BAD_REQUEST, "Bad Request: can't parse JSON body"),
            }
        } else if let Some(boundary) = content_type.split("boundary=").nth(1) {
            match multipart_fields(&body, boundary.trim_matches('"')) {
                Some(fields) => params.extend(fields),
                None => return fail(StatusCode::BAD_REQUEST, "Bad Request: can't parse multipart body"),
            }
        } else {
            return fail(StatusCode::BAD_REQUEST, "Bad Request: send JSON or multipart/form-data");
        }
    }
    let params = Value::Object(params);
    // Telegram matches method names case-insensitively (teloxide sends `SendMessage`).
    let method = METHODS.iter().find(|m| m.eq_ignore_ascii_case(&method)).map_or(method, |m| (*m).to_string());
    let outcome = if method == "getUpdates" {
        get_updates(&shared, &params).await
    } else {
        let mut inner = shared.lock();
        dispatch(&shared, &mut inner, &method, &params)
    };
    {
        let mut inner = shared.lock();
        let seq = inner.calls.len() as u64 + 1;
        let (result, error) = match &outcome {
            Ok(v) => (Some(v.clone()), None),
            Err((_, d)) => (None, Some(d.clone())),
        };
        inner.calls.push(Call { seq, method: method.clone(), params, result, error, at: Instant::now() });
    }
    shared.calls_version.send_modify(|v| *v += 1);
    match outcome {
        Ok(v) => ok(v),
        Err((StatusCode::TOO_MANY_REQUESTS, d)) => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"ok": false, "error_code": 429, "description": d, "parameters": {"retry_after": 1}})),
        )
            .into_response(),
        Err((status, d)) => fail(status, &d),
    }
}

/// The fields of a multipart/form-data body (how teloxide sends `setWebhook` and
/// `sendDocument`). A file part becomes `{"file_name": …, "content": …}`; files are read as
/// UTF-8 text, which is what the bot uploads (CSV).
fn multipart_fields(body: &[u8], boundary: &str) -> Option<serde_json::Map<String, Value>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut fields = serde_json::Map::new();
    for part in text.split(&format!("--{boundary}")).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let (head, value) = part.split_once("\r\n\r\n")?;
        let name = head.split(" name=\"").nth(1)?.split('"').next()?;
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        if let Some(file_name) = head.split("filename=\"").nth(1).and_then(|s| s.split('"').next()) {
            fields.insert(name.to_string(), json!({"file_name": file_name, "content": value}));
            continue;
        }
        // Non-string values arrive JSON-encoded; strings arrive bare.
        let value = serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::String(value.to_string()));
        fields.insert(name.to_string(), value);
    }
    Some(fields)
}

/// With a webhook set, POSTs each update to it in order, as Telegram does, retrying until
/// the bot answers 200.
async fn deliver_to_webhook(shared: Arc<Shared>) {
    let client = reqwest::Client::new();
    let mut version = shared.updates_version.subscribe();
    loop {
        let next = {
            let inner = shared.lock();
            if inner.webhook_url.is_empty() {
                None
            } else {
                inner.updates.first().map(|u| (u.clone(), inner.webhook_url.clone(), inner.webhook_secret.clone()))
            }
        };
        let Some((update, url, secret)) = next else {
            // Woken by a new update, or now and then to notice a newly set webhook.
            let _ = tokio::time::timeout(Duration::from_millis(100), version.changed()).await;
            continue;
        };
        let mut req = client.post(&url).json(&update);
        if !secret.is_empty() {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                let id = update["update_id"].as_i64();
                shared.lock().updates.retain(|u| u["update_id"].as_i64() != id);
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn get_updates(shared: &Shared, params: &Value) -> Outcome {
    let offset = params.get("offset").and_then(as_i64).unwrap_or(0);
    let limit = params.get("limit").and_then(as_i64).unwrap_or(100).clamp(1, 100) as usize;
    let timeout = params.get("timeout").and_then(as_i64).unwrap_or(0).clamp(0, 50) as u64;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut version = shared.updates_version.subscribe();
    loop {
        {
            let mut inner = shared.lock();
            if !inner.webhook_url.is_empty() {
                return Err((
                    StatusCode::CONFLICT,
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first".into(),
                ));
            }
            // An offset confirms every update before it: Telegram forgets them.
            if offset > 0 {
                inner.updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            }
            let batch: Vec<Value> = inner.updates.iter().take(limit).cloned().collect();
            if !batch.is_empty() {
                return Ok(Value::Array(batch));
            }
        }
        match tokio::time::timeout_at(deadline, version.changed()).await {
            Ok(Ok(())) => {}
            _ => return Ok(json!([])),
        }
    }
}

fn require_chat(inner: &Inner, params: &Value) -> Result<i64, (StatusCode, String)> {
    let chat = params.get("chat_id").and_then(as_i64).ok_or_else(|| bad("chat_id is empty"))?;
    if !inner.chats.contains_key(&chat) && !inner.groups.contains_key(&chat) {
        return Err(bad("chat not found"));
    }
    Ok(chat)
}

fn check_text(params: &Value) -> Result<String, (StatusCode, String)> {
    let text = params.get("text").and_then(Value::as_str).unwrap_or("");
    if text.trim().is_empty() {
        return Err(bad("message text is empty"));
    }
    if utf16_len(text) > MESSAGE_LIMIT {
        return Err(bad("message is too long"));
    }
    Ok(text.to_string())
}

fn check_markup(params: &Value) -> Result<Value, (StatusCode, String)> {
    let markup = match params.get("reply_markup") {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|_| bad("can't parse reply keyboard markup JSON object"))?
        }
        Some(v) => v.clone(),
    };
    let rows = markup
        .get("inline_keyboard")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object"))?;
    for b in rows.iter().flat_map(|r| r.as_array().into_iter().flatten()) {
        if b.get("text").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(bad("BUTTON_TEXT_EMPTY"));
        }
        if let Some(data) = b.get("callback_data") {
            let data = data.as_str().unwrap_or("");
            if data.is_empty() || data.len() > MAX_CALLBACK_DATA {
                return Err(bad("BUTTON_DATA_INVALID"));
            }
        }
    }
    Ok(markup)
}

fn check_flood(inner: &mut Inner, chat: i64) -> Result<(), (StatusCode, String)> {
    let now = Instant::now();
    if let (Some(interval), Some(&last)) = (inner.flood_interval, inner.last_delivery.get(&chat))
        && now.duration_since(last) < interval
    {
        return Err((StatusCode::TOO_MANY_REQUESTS, "Too Many Requests: retry after 1".into()));
    }
    inner.last_delivery.insert(chat, now);
    Ok(())
}

fn dispatch(shared: &Shared, inner: &mut Inner, method: &str, params: &Value) -> Outcome {
    match method {
        "getMe" => Ok(json!({
            "id": shared.bot["id"], "is_bot": true, "first_name": shared.bot["first_name"],
            "username": shared.bot["username"], "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false, "has_main_web_app": false
        })),
        "deleteWebhook" => {
            inner.webhook_url.clear();
            Ok(json!(true))
        }
        "setWebhook" => {
            let url = params.get("url").and_then(Value::as_str).unwrap_or("");
            if !url.is_empty() && reqwest::Url::parse(url).is_err() {
                return Err(bad("bad webhook: invalid URL"));
            }
            inner.webhook_url = url.to_string();
            inner.webhook_secret = params.get("secret_token").and_then(Value::as_str).unwrap_or("").to_string();
            Ok(json!(true))
        }
        "getWebhookInfo" => Ok(json!({"url": inner.webhook_url, "has_custom_certificate": false,
            "pending_update_count": inner.updates.len()})),
        "setMyCommands" => {
            let commands = params.get("commands").cloned().unwrap_or(json!([]));
            let commands = match commands {
                Value::String(s) => serde_json::from_str(&s).map_err(|_| bad("can't parse commands JSON"))?,
                v => v,
            };
            let list = commands.as_array().ok_or_else(|| bad("commands must be an array"))?;
            if list.len() > 100 {
                return Err(bad("BOT_COMMANDS_TOO_MUCH"));
            }
            for c in list {
                let name = c.get("command").and_then(Value::as_str).unwrap_or("");
                if !crm_bot::command::is_valid_name(name) {
                    return Err(bad("BOT_COMMAND_INVALID"));
                }
                let desc = c.get("description").and_then(Value::as_str).unwrap_or("");
                if !(3..=256).contains(&desc.chars().count()) {
                    return Err(bad("BOT_COMMAND_DESCRIPTION_INVALID"));
                }
            }
            inner.commands = commands;
            Ok(json!(true))
        }
        "getMyCommands" => Ok(inner.commands.clone()),
        "sendMessage" => {
            let chat = require_chat(inner, params)?;
            let text = check_text(params)?;
            let markup = check_markup(params)?;
            check_flood(inner, chat)?;
            let id = LocalBotApi::next_message_id(inner, chat);
            let user = inner
                .chats
                .get(&chat)
                .map(TgUser::private_chat)
                .or_else(|| inner.groups.get(&chat).cloned())
                .unwrap_or(Value::Null);
            let mut message =
                json!({"message_id": id, "from": shared.bot, "chat": user, "date": now_unix(), "text": text});
            if !markup.is_null() {
                message["reply_markup"] = markup.clone();
            }
            inner.messages.insert((chat, id), StoredMessage { text, markup, json: message.clone() });
            Ok(message)
        }
        "editMessageText" => {
            let chat = require_chat(inner, params)?;
            let id =
                params.get("message_id").and_then(as_i64).ok_or_else(|| bad("message identifier is not specified"))?;
            let text = check_text(params)?;
            let markup = check_markup(params)?;
            let Some(stored) = inner.messages.get(&(chat, id)) else {
                return Err(bad("message to edit not found"));
            };
            if stored.text == text && stored.markup == markup {
                return Err(bad(
                    "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                ));
            }
            check_flood(inner, chat)?;
            let Some(stored) = inner.messages.get_mut(&(chat, id)) else {
                return Err(bad("message to edit not found"));
            };
            stored.text = text.clone();
            stored.markup = markup.clone();
            stored.json["text"] = json!(text);
            stored.json["edit_date"] = json!(now_unix());
            match markup {
                Value::Null => {
                    if let Some(m) = stored.json.as_object_mut() {
                        m.remove("reply_markup");
                    }
                }
                m => stored.json["reply_markup"] = m,
            }
            Ok(stored.json.clone())
        }
        "getFile" => {
            let file_id = params.get("file_id").and_then(Value::as_str).unwrap_or("");
            let Some((path, content)) = inner.files.get(file_id) else {
                return Err(bad("invalid file_id"));
            };
            if content.len() > DOWNLOAD_LIMIT {
                return Err(bad("file is too big"));
            }
            Ok(json!({"file_id": file_id, "file_unique_id": format!("u{file_id}"), "file_size": content.len(),
                "file_path": path}))
        }
        "sendDocument" => {
            let chat = require_chat(inner, params)?;
            let markup = check_markup(params)?;
            // The file is the part named `document`, or the part `document` names as
            // `attach://<part>` (how teloxide uploads).
            let document = match params.get("document") {
                Some(Value::String(s)) if s.starts_with("attach://") => params.get(&s["attach://".len()..]),
                other => other,
            };
            let (file_name, content) = match document {
                Some(Value::Object(f)) => (
                    f.get("file_name").and_then(Value::as_str).unwrap_or("document").to_string(),
                    f.get("content").and_then(Value::as_str).unwrap_or("").as_bytes().to_vec(),
                ),
                Some(Value::String(id)) => match inner.files.get(id.as_str()) {
                    Some((path, content)) => {
                        (path.rsplit('/').next().unwrap_or("document").to_string(), content.clone())
                    }
                    None => return Err(bad("wrong file identifier/HTTP URL specified")),
                },
                _ => return Err(bad("there is no document in the request")),
            };
            if content.is_empty() {
                return Err(bad("file must be non-empty"));
            }
            if content.len() > UPLOAD_LIMIT {
                return Err((StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large".into()));
            }
            let caption = params.get("caption").and_then(Value::as_str).unwrap_or("").to_string();
            if utf16_len(&caption) > 1024 {
                return Err(bad("message caption is too long"));
            }
            check_flood(inner, chat)?;
            let n = inner.files.len() + 1;
            let file_id = format!("file-{n}");
            inner.files.insert(file_id.clone(), (format!("documents/file_{n}.csv"), content.clone()));
            let id = LocalBotApi::next_message_id(inner, chat);
            let user = inner
                .chats
                .get(&chat)
                .map(TgUser::private_chat)
                .or_else(|| inner.groups.get(&chat).cloned())
                .unwrap_or(Value::Null);
            let mut message = json!({"message_id": id, "from": shared.bot, "chat": user, "date": now_unix(),
                "document": document_json(&file_id, &file_name, content.len())});
            if !caption.is_empty() {
                message["caption"] = json!(caption);
            }
            if !markup.is_null() {
                message["reply_markup"] = markup.clone();
            }
            inner.messages.insert((chat, id), StoredMessage { text: caption, markup, json: message.clone() });
            Ok(message)
        }
        "answerCallbackQuery" => {
            let id = params.get("callback_query_id").and_then(Value::as_str).unwrap_or("");
            match inner.callback_queries.get_mut(id) {
                Some(answered @ false) => {
                    *answered = true;
                    Ok(json!(true))
                }
                _ => Err(bad("query is too old and response timeout expired or query id is invalid")),
            }
        }
        _ => Err((StatusCode::NOT_FOUND, "Not Found".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::{Update, UpdateKind};

    /// The JSON this server produces must be what teloxide parses from Telegram.
    #[tokio::test]
    async fn updates_and_messages_parse_as_teloxide_types() {
        let api = LocalBotApi::start("42:secret").await.unwrap();
        let ann = TgUser::new(7, "Ann");
        let mid = api.send_text(&ann, "/find שלום 😀");
        api.edit_text(&ann, mid, "/find fixed");
        api.press(&ann, 99, "o:c:1");
        let updates: Vec<Value> = api.shared.lock().updates.clone();
        // From text, as over the wire: teloxide's update parser needs borrowed keys.
        let parsed: Vec<Update> = updates.iter().map(|u| serde_json::from_str(&u.to_string()).unwrap()).collect();
        assert!(
            matches!(&parsed[0].kind, UpdateKind::Message(m) if m.text() == Some("/find שלום 😀")),
            "{:?} {}",
            parsed[0],
            updates[0]
        );
        assert!(matches!(&parsed[1].kind, UpdateKind::EditedMessage(_)));
        assert!(matches!(&parsed[2].kind, UpdateKind::CallbackQuery(q) if q.data.as_deref() == Some("o:c:1")));
    }
}
