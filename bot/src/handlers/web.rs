//! `/web`: a one-time link that signs the chat user in to the web app. The engine mints
//! it for the acting user (`POST /api/sign-in-links`); the bot only passes it on. Over
//! HTTPS the reply also offers the app as a Telegram Mini App, which signs in by itself.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo};

use super::Req;

#[derive(Debug, Deserialize)]
struct SignInLink {
    url: String,
    expires_at: DateTime<Utc>,
}

pub async fn link(req: &Req<'_>) {
    let link: SignInLink = match req.ctx.engine.post(req.acting(), "/api/sign-in-links", &serde_json::json!({})).await {
        Ok(l) => l,
        Err(e) => return req.fail(&e),
    };
    let minutes = (link.expires_at - Utc::now()).num_minutes().max(1);
    let text = format!(
        "🔐 Your sign-in link for the CRM's web app. It works once, for {minutes} minutes; don't forward it.\n{}",
        link.url
    );
    req.reply_with(&text, keyboard(&link.url));
}

/// Buttons for an HTTPS app (Telegram refuses others): open the link, or the Mini App.
fn keyboard(link: &str) -> Option<InlineKeyboardMarkup> {
    if !link.starts_with("https://") {
        return None;
    }
    let url = reqwest::Url::parse(link).ok()?;
    let mut mini_app = url.clone();
    mini_app.set_path("/tg");
    mini_app.set_query(None);
    Some(InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::url("Open in the browser", url),
        InlineKeyboardButton::web_app("Open in Telegram", WebAppInfo { url: mini_app }),
    ]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_only_for_https() {
        assert!(keyboard("http://127.0.0.1:8080/sign-in/link/abc").is_none());
        let k = keyboard("https://crm.example.com/sign-in/link/abc").expect("buttons");
        assert_eq!(k.inline_keyboard[0].len(), 2);
    }
}
