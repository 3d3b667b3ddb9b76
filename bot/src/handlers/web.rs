//! `/web`: a one-time link that signs the chat user in to the web app. The engine mints
//! it for the acting user (`POST /api/sign-in-links`); the bot only passes it on. Over
//! HTTPS the reply also offers the app as a Telegram Mini App, which signs in by itself.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo};

use super::Req;
use crate::t;
use crate::texts::Language;

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
    let text = t!(req.lang, "web-link", minutes = minutes, url = link.url.as_str());
    req.reply_with(&text, keyboard(&link.url, req.lang));
}

/// Buttons for an HTTPS app (Telegram refuses others): open the link, or the Mini App.
fn keyboard(link: &str, lang: Language) -> Option<InlineKeyboardMarkup> {
    if !link.starts_with("https://") {
        return None;
    }
    let url = reqwest::Url::parse(link).ok()?;
    let mut mini_app = url.clone();
    mini_app.set_path("/tg");
    mini_app.set_query(None);
    Some(InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::url(t!(lang, "web-open-browser"), url),
        InlineKeyboardButton::web_app(t!(lang, "web-open-telegram"), WebAppInfo { url: mini_app }),
    ]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_only_for_https() {
        assert!(keyboard("http://127.0.0.1:8080/sign-in/link/abc", Language::En).is_none());
        let k = keyboard("https://crm.example.com/sign-in/link/abc", Language::En).expect("buttons");
        assert_eq!(k.inline_keyboard[0].len(), 2);
    }
}
