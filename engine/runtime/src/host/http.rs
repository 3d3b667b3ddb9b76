//! `crm:automation/http`: outbound requests to destinations granted as `http:HOST`
//! (`https://HOST:443`) or `http:SCHEME://HOST:PORT`. The scheme, host and port of each
//! request must be granted exactly; the address it connects to must not be internal
//! (`crate::egress`); headers that steer the connection rather than describe the request
//! are the host's; redirects are not followed (a redirect to another destination would
//! slip past the allow-list); the timeout never outlives the step's deadline, and
//! response bodies are capped.

use std::time::{Duration, Instant};

use crm_concepts::capability::Capability;
use crm_concepts::egress::Egress;

use crate::bindings::HostError;
use crate::bindings::crm::automation::http::{Host, Request, Response};
use crate::egress::{self, Outbound};
use crate::host_calls::HostCalls;
use crate::state::StepState;

const MAX_RESPONSE_BODY: usize = 8 << 20;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers that say where and how to connect: a step that could set `Host` would reach a
/// virtual host it was not granted on a server it was; the framing headers could smuggle a
/// second request past the first.
fn is_forbidden_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "host" | "connection" | "keep-alive" | "transfer-encoding" | "content-length" | "te" | "trailer" | "upgrade"
    ) || name.starts_with("proxy-")
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
        let destination = match Egress::of_url(url.scheme(), host, url.port_or_known_default()) {
            Ok(destination) => destination,
            Err(_) => {
                return Ok(Err(HostError::Invalid(format!("{host:?} is not a host name a step may call"))));
            }
        };
        self.require(Capability::Http(destination))?;
        if let Err(refused) = self.http.check_literal(host) {
            return Ok(Err(HostError::Invalid(refused.to_string())));
        }
        if let Some((name, _)) = req.headers.iter().find(|(name, _)| is_forbidden_header(name)) {
            return Ok(Err(HostError::Invalid(format!("header {name:?} is set by the host, not by a step"))));
        }
        if self.cx.provisional {
            // A step sent beside the write that records it computes at once, but nothing
            // it sends may leave before that write commits: its run may have been
            // cancelled meanwhile.
            if let Err(e) = self.host.confirm(&self.cx).await {
                return Ok(Err(crate::convert::host_error(e)));
            }
            self.cx.provisional = false;
        }
        Ok(fetch(&self.http, self.cx.deadline, url, req).await)
    }
}

async fn fetch(http: &Outbound, deadline: Instant, url: reqwest::Url, req: Request) -> Result<Response, HostError> {
    let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| HostError::Invalid(format!("{:?} is not an HTTP method", req.method)))?;
    let wanted = req.timeout_ms.map_or(DEFAULT_TIMEOUT, |ms| Duration::from_millis(ms.into()));
    let timeout = wanted.min(deadline.saturating_duration_since(Instant::now()));
    let mut builder = http.client.request(method, url).timeout(timeout);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = req.body {
        builder = builder.body(body);
    }
    let mut resp = builder.send().await.map_err(|e| match egress::refusal(&e) {
        Some(refused) => HostError::Invalid(refused.to_string()),
        None => HostError::Unavailable(format!("request failed: {e}")),
    })?;
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
