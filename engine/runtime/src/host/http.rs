//! `crm:automation/http`: outbound requests to hosts granted as `http:HOST`. Redirects are
//! not followed (a redirect to another host would slip past the allow-list), the timeout
//! never outlives the step's deadline, and response bodies are capped.

use std::time::{Duration, Instant};

use crm_concepts::capability::Capability;

use crate::bindings::HostError;
use crate::bindings::crm::automation::http::{Host, Request, Response};
use crate::host_calls::HostCalls;
use crate::state::StepState;

const MAX_RESPONSE_BODY: usize = 8 << 20;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client all steps of a process share: connection pooling across steps, no redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("crm-step/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl<H: HostCalls> Host for StepState<H> {
    async fn send(&mut self, req: Request) -> wasmtime::Result<Result<Response, HostError>> {
        let url = match reqwest::Url::parse(&req.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            Ok(url) => {
                return Ok(Err(HostError::Invalid(format!("scheme {:?} is not http or https", url.scheme()))));
            }
            Err(e) => {
                return Ok(Err(HostError::Invalid(format!("{:?} is not a URL: {e}", req.url))));
            }
        };
        let Some(host) = url.host_str() else {
            return Ok(Err(HostError::Invalid(format!("{:?} has no host", req.url))));
        };
        let cap = match format!("http:{host}").parse::<Capability>() {
            Ok(cap) => cap,
            Err(_) => {
                return Ok(Err(HostError::Invalid(format!("{host:?} is not a host name a step may call"))));
            }
        };
        self.require(cap)?;
        Ok(fetch(self.http.clone(), self.cx.deadline, url, req).await)
    }
}

async fn fetch(
    http: reqwest::Client,
    deadline: Instant,
    url: reqwest::Url,
    req: Request,
) -> Result<Response, HostError> {
    {
        let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| HostError::Invalid(format!("{:?} is not an HTTP method", req.method)))?;
        let wanted = req.timeout_ms.map_or(DEFAULT_TIMEOUT, |ms| Duration::from_millis(ms.into()));
        let timeout = wanted.min(deadline.saturating_duration_since(Instant::now()));
        let mut builder = http.request(method, url).timeout(timeout);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let mut resp = builder.send().await.map_err(|e| HostError::Unavailable(format!("request failed: {e}")))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| HostError::Unavailable(format!("reading the response: {e}")))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BODY {
                return Err(HostError::Invalid(format!("the response body exceeds {MAX_RESPONSE_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body })
    }
}
