//! The bot's only way into the CRM: the engine's HTTP API. The bot holds an admin token
//! and names the chat user it acts for in `X-Crm-Acting-User`, so the engine applies that
//! user's role to every read and write.

use std::time::Duration;

use crm_concepts::records::Id;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The header that makes an admin token act with another user's permissions.
pub const ACTING_USER_HEADER: &str = "X-Crm-Acting-User";

#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The engine answered with its error shape.
    #[error("{code} ({status}): {message}")]
    Api { status: u16, code: String, message: String, fields: Vec<FieldError> },
    #[error("cannot reach the engine: {0}")]
    Transport(String),
    #[error("unexpected answer from the engine: {0}")]
    Decode(String),
}

impl EngineError {
    pub fn code(&self) -> Option<&str> {
        match self {
            EngineError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some("not_found")
    }

    /// What to tell the chat user. Internal details stay in the log.
    pub fn for_chat(&self) -> String {
        match self {
            EngineError::Api { code, message, fields, .. } => match code.as_str() {
                "forbidden" => "⛔ Your role does not allow that. Ask an admin if you need it.".into(),
                "not_found" => "That record no longer exists (or you cannot see it).".into(),
                "unauthorized" => "The bot's engine token was refused; tell your admin.".into(),
                "internal" => "The CRM hit an internal error; please try again later.".into(),
                _ if !fields.is_empty() => {
                    let details: Vec<String> = fields.iter().map(|f| format!("• {}: {}", f.field, f.message)).collect();
                    format!("{message}\n{}", details.join("\n"))
                }
                _ => message.clone(),
            },
            EngineError::Transport(_) => "The CRM is not reachable right now; please try again in a moment.".into(),
            EngineError::Decode(_) => "The CRM answered something the bot does not understand; tell your admin.".into(),
        }
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    #[serde(default)]
    fields: Vec<FieldError>,
}

/// `None` acts as the token's own (admin) user: only identity look-ups and invite
/// redemption do that; everything a chat user asks for carries their id.
pub type Acting = Option<Id>;

#[derive(Clone)]
pub struct EngineClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl EngineClient {
    pub fn new(base: &str, token: &str) -> Result<EngineClient, EngineError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| EngineError::Transport(e.to_string()))?;
        Ok(EngineClient { http, base: base.trim_end_matches('/').to_string(), token: token.to_string() })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request with auth and the acting user set; for streams the caller drives.
    pub fn request(&self, method: reqwest::Method, path: &str, acting: Acting) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(user) = acting {
            req = req.header(ACTING_USER_HEADER, user.to_string());
        }
        req
    }

    pub fn raw_client(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    async fn send<T: DeserializeOwned>(req: reqwest::RequestBuilder) -> Result<T, EngineError> {
        let bytes = Self::send_raw(req).await?;
        // 204 and friends: let `()` and `Value` accept an empty body.
        let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(body).map_err(|e| EngineError::Decode(e.to_string()))
    }

    /// The body of a successful answer as it came; an error answer as an [`EngineError`].
    async fn send_raw(req: reqwest::RequestBuilder) -> Result<Vec<u8>, EngineError> {
        let resp = req.send().await.map_err(|e| EngineError::Transport(e.to_string()))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| EngineError::Transport(e.to_string()))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(ErrorBody { error }) => Err(EngineError::Api {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
                fields: error.fields,
            }),
            Err(_) => Err(EngineError::Api {
                status: status.as_u16(),
                code: status_code_name(status.as_u16()).into(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                fields: Vec::new(),
            }),
        }
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        acting: Acting,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, EngineError> {
        Self::send(self.request(reqwest::Method::GET, path, acting).query(query)).await
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        acting: Acting,
        path: &str,
        body: &B,
    ) -> Result<T, EngineError> {
        Self::send(self.request(reqwest::Method::POST, path, acting).json(body)).await
    }

    /// A download (a CSV export): the body's bytes.
    pub async fn get_bytes(&self, acting: Acting, path: &str) -> Result<Vec<u8>, EngineError> {
        Self::send_raw(self.request(reqwest::Method::GET, path, acting)).await
    }

    /// An upload of a CSV file; the answer is JSON.
    pub async fn post_csv<T: DeserializeOwned>(
        &self,
        acting: Acting,
        path: &str,
        csv: Vec<u8>,
    ) -> Result<T, EngineError> {
        Self::send(
            self.request(reqwest::Method::POST, path, acting)
                .header(reqwest::header::CONTENT_TYPE, "text/csv")
                .body(csv),
        )
        .await
    }

    pub async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        acting: Acting,
        path: &str,
        body: &B,
    ) -> Result<T, EngineError> {
        Self::send(self.request(reqwest::Method::PATCH, path, acting).json(body)).await
    }

    /// A deletion; the engine answers 204 with no body.
    pub async fn delete(&self, acting: Acting, path: &str) -> Result<(), EngineError> {
        Self::send_raw(self.request(reqwest::Method::DELETE, path, acting)).await.map(drop)
    }
}

fn status_code_name(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "payload_too_large",
        422 => "validation_failed",
        _ => "internal",
    }
}
