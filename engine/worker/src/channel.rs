//! The worker's channel to the engine: persistent HTTP connections to its workers' routes
//! (`crm_concepts::worker_channel`), authenticated by the worker credential.

use std::time::Duration;

use crm_concepts::host_call::{HostCallError, HostReply};
use crm_concepts::step::TicketedResult;
use crm_concepts::worker_channel::{self as wire, CallAnswer, CallRequest, ConfirmRequest, Hello, ResultsRequest};
use reqwest::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// the engine could not be reached or did not answer: try again
    #[error("the engine is unreachable: {0}")]
    Unreachable(String),
    /// the engine answered that it cannot take the request now: try again
    #[error("the engine is unavailable: {0}")]
    Unavailable(String),
    /// the engine will never accept this (a revoked credential, a forged or expired
    /// ticket, an ungranted call)
    #[error("the engine refused: {0}")]
    Refused(String),
    #[error("no such component: {0}")]
    NoComponent(String),
}

impl ChannelError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ChannelError::Unreachable(_) | ChannelError::Unavailable(_))
    }
}

#[derive(Clone)]
pub struct EngineChannel {
    http: reqwest::Client,
    base: String,
    credential: String,
}

fn unreachable(e: reqwest::Error) -> ChannelError {
    ChannelError::Unreachable(e.to_string())
}

async fn failure(resp: reqwest::Response) -> ChannelError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let message = format!("{status}: {}", body.chars().take(500).collect::<String>());
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
            ChannelError::Refused(message)
        }
        StatusCode::NOT_FOUND => ChannelError::NoComponent(message),
        _ => ChannelError::Unavailable(message),
    }
}

impl EngineChannel {
    pub fn new(base: &str, credential: &str) -> Result<EngineChannel, ChannelError> {
        let http = reqwest::Client::builder()
            // Every host call is a small request: keep connections open and reuse them.
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(unreachable)?;
        Ok(EngineChannel { http, base: base.trim_end_matches('/').to_string(), credential: credential.to_string() })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn hello(&self) -> Result<Hello, ChannelError> {
        let resp = self
            .http
            .get(self.url(wire::HELLO))
            .bearer_auth(&self.credential)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(failure(resp).await);
        }
        resp.json().await.map_err(unreachable)
    }

    /// The digests of the components the current workflow versions run.
    pub async fn current_components(&self) -> Result<Vec<String>, ChannelError> {
        let resp = self
            .http
            .get(self.url(wire::COMPONENTS))
            .bearer_auth(&self.credential)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(failure(resp).await);
        }
        let current: wire::CurrentComponents = resp.json().await.map_err(unreachable)?;
        Ok(current.digests)
    }

    /// The bytes of a stored component.
    pub async fn component(&self, digest: &str) -> Result<Vec<u8>, ChannelError> {
        let resp = self
            .http
            .get(self.url(&format!("{}/{digest}", wire::COMPONENTS)))
            .bearer_auth(&self.credential)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(failure(resp).await);
        }
        Ok(resp.bytes().await.map_err(unreachable)?.to_vec())
    }

    /// POSTs `body` to `path`, bounded by `timeout`; the response if it succeeded.
    async fn post(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        timeout: Duration,
    ) -> Result<reqwest::Response, ChannelError> {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.credential)
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(failure(resp).await);
        }
        Ok(resp)
    }

    /// One host call, bounded by `timeout`.
    pub async fn call(
        &self,
        request: &CallRequest,
        timeout: Duration,
    ) -> Result<Result<HostReply, HostCallError>, ChannelError> {
        let answer: CallAnswer = self.post(wire::CALLS, request, timeout).await?.json().await.map_err(unreachable)?;
        Ok(answer.into())
    }

    /// Waits, at most `timeout`, for the engine to say a provisional attempt is recorded.
    pub async fn confirm(&self, request: &ConfirmRequest, timeout: Duration) -> Result<(), ChannelError> {
        self.post(wire::CONFIRM, request, timeout).await.map(drop)
    }

    /// Hands in results; `Ok` once the engine has committed them.
    pub async fn results(&self, results: Vec<TicketedResult>) -> Result<(), ChannelError> {
        self.post(wire::RESULTS, &ResultsRequest { results }, Duration::from_secs(60)).await.map(drop)
    }
}
