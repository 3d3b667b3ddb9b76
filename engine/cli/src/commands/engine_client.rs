//! The engine's HTTP API as the CLI uses it (`crm workflow …`, `crm run …`): the URL from
//! `--engine`/CRM_ENGINE_URL (default `http://` + CRM_LISTEN), an API token from
//! `--token`/CRM_ENGINE_TOKEN, and API errors turned into readable messages.

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::Value;

use crate::config::Config;

#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// The engine's URL (default CRM_ENGINE_URL, else http:// + CRM_LISTEN).
    #[arg(long)]
    pub engine: Option<String>,
    /// An API token (default CRM_ENGINE_TOKEN); create one with `crm token create`.
    #[arg(long, env = "CRM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub struct EngineClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl EngineClient {
    pub fn new(config: &Config, args: &EngineArgs) -> anyhow::Result<EngineClient> {
        let base = args
            .engine
            .clone()
            .or_else(|| config.engine_url.clone())
            .unwrap_or_else(|| format!("http://{}", config.listen));
        let token = args.token.clone().or_else(|| config.engine_token.clone()).context(
            "no API token: pass --token or set CRM_TOKEN / CRM_ENGINE_TOKEN (create one with `crm token create`)",
        )?;
        let http = reqwest::Client::builder().build().context("building the HTTP client")?;
        Ok(EngineClient { base: base.trim_end_matches('/').to_string(), token, http })
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp =
            req.send().await.with_context(|| format!("{method} {}{path}: is `crm serve` running?", self.base))?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the engine's answer")?;
        let value: Value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]["message"].as_str().unwrap_or("no details").to_string();
        let mut text = format!("{method} {path} failed ({status}): {message}");
        if let Some(fields) = value["error"]["fields"].as_array()
            && fields.len() > 1
        {
            text = format!("{method} {path} failed ({status}):");
            for f in fields {
                text.push_str(&format!(
                    "\n  {}: {}",
                    f["field"].as_str().unwrap_or("?"),
                    f["message"].as_str().unwrap_or("?")
                ));
            }
        }
        bail!(text)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }
}
