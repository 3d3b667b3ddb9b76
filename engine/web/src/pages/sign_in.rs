//! Signing in and out. Three ways in, all ending in a session cookie:
//!
//! - a one-time link from the bot (`/web`): `GET /sign-in/link/{code}` shows a button that
//!   posts the code, because chat clients fetch links to preview them and a GET must not
//!   use the link up;
//! - inside Telegram, the Mini App page `/tg` posts the `initData` the Telegram client put
//!   in its URL fragment; it is verified with the bot token and mapped to the CRM user
//!   linked to that Telegram account;
//! - an API token pasted once into `/sign-in`: the browser keeps a session, not the token.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use chrono::Utc;
use crm_store::web_sessions::{self, SignedInVia};
use crm_store::{sign_in_links, tokens, users};
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::{self, Me, PRESIGN_COOKIE, Visitor};
use crate::error::WebError;
use crate::layout;
use crate::{WebState, forms, telegram};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/sign-in", get(page))
        .route("/sign-in/token", post(with_token))
        .route("/sign-in/link/{code}", get(link_page))
        .route("/sign-in/link", post(with_link))
        .route("/tg", get(mini_app))
        .route("/sign-in/telegram", post(with_telegram))
        .route("/sign-out", post(sign_out))
}

#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

/// The visitor's pre-session token, and the cookie to set when it is new.
fn presign(visitor: &Visitor, state: &WebState) -> (String, Option<header::HeaderValue>) {
    match &visitor.presign {
        Some(token) => (token.clone(), None),
        None => {
            let token = web_sessions::random_secret(24);
            let cookie = auth::cookie(PRESIGN_COOKIE, &token, "/sign-in", "Strict", Some(3600), state.secure_cookies);
            (token, Some(cookie))
        }
    }
}

fn with_cookie(mut response: Response, cookie: Option<header::HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// Starts a session and sends the browser on to `next`; the browser's previous session,
/// if it had one, ends.
async fn start_session(
    state: &WebState,
    visitor: &Visitor,
    user_id: i64,
    via: SignedInVia,
    next: &str,
) -> Result<Response, WebError> {
    if let Some(old) = &visitor.session {
        web_sessions::end(&state.db, old.id).await?;
    }
    let new = web_sessions::create(&state.db, user_id, via).await?;
    let mut response = auth::see_other(next, Some(&format!("Signed in as {}.", new.session.user.name)));
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, auth::session_cookie(&new.secret, state.secure_cookies));
    h.append(header::SET_COOKIE, auth::clear_cookie(PRESIGN_COOKIE, "/sign-in"));
    Ok(response)
}

fn sign_in_page(token: &str, next: &str, flash: Option<&str>, problem: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in to crm" }
        @if let Some(m) = flash { p.flash role="status" { (m) } }
        section.card {
            h2 { "With Telegram" }
            p { "Send " code { "/web" } " to the CRM's bot: it answers with a sign-in link that works once, for ten minutes." }
            p { "Inside Telegram, open the app from the bot's menu button and you are signed in at once." }
        }
        section.card {
            h2 { "With an API token" }
            p { "Paste a token once (" code { "crm token create" } " makes one); the browser keeps a session, not the token." }
            form method="post" action="/sign-in/token" {
                (forms::csrf(token))
                input type="hidden" name="next" value=(next);
                div.field.invalid[problem.is_some()] {
                    label for="token" { "API token" }
                    input id="token" name="token" type="password" autocomplete="off" required placeholder="crm_…";
                    @if let Some(p) = problem { p.field-error { (p) } }
                }
                button type="submit" { "Sign in" }
            }
        }
    }
}

async fn page(State(state): State<WebState>, visitor: Visitor, Query(q): Query<Next>) -> Response {
    let next = auth::safe_next(q.next.as_deref());
    if visitor.session.is_some() {
        return auth::see_other(&next, None);
    }
    let (token, cookie) = presign(&visitor, &state);
    let body = sign_in_page(&token, &next, visitor.flash.as_deref(), None);
    with_cookie(layout::bare("Sign in", body).into_response(), cookie)
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    token: String,
    next: Option<String>,
}

async fn with_token(
    State(state): State<WebState>,
    visitor: Visitor,
    Form(f): Form<TokenForm>,
) -> Result<Response, WebError> {
    let next = auth::safe_next(f.next.as_deref());
    match tokens::authenticate(&state.db, f.token.trim()).await? {
        Some((user, _)) => start_session(&state, &visitor, user.id, SignedInVia::Token, &next).await,
        None => {
            let (token, cookie) = presign(&visitor, &state);
            let body = sign_in_page(&token, &next, None, Some("This token is not valid, or it was revoked."));
            let response = (StatusCode::UNAUTHORIZED, layout::bare("Sign in", body)).into_response();
            Ok(with_cookie(response, cookie))
        }
    }
}

async fn link_page(State(state): State<WebState>, visitor: Visitor, Path(code): Path<String>) -> Response {
    let (token, cookie) = presign(&visitor, &state);
    let body = html! {
        h1 { "Sign in to crm" }
        p { "This link from the bot signs you in once. Press the button to continue." }
        form method="post" action="/sign-in/link" {
            (forms::csrf(&token))
            input type="hidden" name="code" value=(code);
            button type="submit" id="use-link" { "Sign in" }
        }
    };
    with_cookie(layout::bare("Sign in", body).into_response(), cookie)
}

#[derive(Debug, Deserialize)]
struct LinkForm {
    code: String,
}

async fn with_link(
    State(state): State<WebState>,
    visitor: Visitor,
    Form(f): Form<LinkForm>,
) -> Result<Response, WebError> {
    match sign_in_links::redeem(&state.db, f.code.trim()).await? {
        Some(user_id) => start_session(&state, &visitor, user_id, SignedInVia::Link, "/").await,
        None => {
            let body = html! {
                h1 { "This link no longer works" }
                p.error-message { "This sign-in link has expired or was already used. Send /web to the bot for a new one." }
                p { a href="/sign-in" { "Other ways to sign in" } }
            };
            Ok((StatusCode::GONE, layout::bare("Sign in", body)).into_response())
        }
    }
}

async fn mini_app(State(state): State<WebState>, visitor: Visitor) -> Response {
    let (token, cookie) = presign(&visitor, &state);
    let body = html! {
        h1 { "crm" }
        p #tg-status data-telegram-sign-in="/sign-in/telegram" {
            "Signing you in with Telegram… If nothing happens, open this app from the CRM's bot."
        }
        p { a href="/sign-in" { "Other ways to sign in" } }
    };
    with_cookie(layout::bare_with_token("Telegram", &token, body).into_response(), cookie)
}

#[derive(Debug, Deserialize)]
struct TelegramForm {
    init_data: String,
}

async fn with_telegram(
    State(state): State<WebState>,
    visitor: Visitor,
    Form(f): Form<TelegramForm>,
) -> Result<Response, WebError> {
    let Some(bot_token) = state.bot_token.as_deref() else {
        return Err(WebError::Unavailable("Telegram sign-in is off: this engine has no CRM_BOT_TOKEN.".into()));
    };
    let tg = telegram::verify(&f.init_data, bot_token, Utc::now()).map_err(|e| WebError::forbidden(e.to_string()))?;
    let user = users::by_telegram(&state.db, tg.id).await?.ok_or_else(|| {
        WebError::forbidden(
            "Your Telegram account is not linked to a CRM user. Ask an admin for an invite, then send /start CODE to the bot.",
        )
    })?;
    if let Some(old) = &visitor.session {
        web_sessions::end(&state.db, old.id).await?;
    }
    let new = web_sessions::create(&state.db, user.id, SignedInVia::Telegram).await?;
    let mut response =
        Json(serde_json::json!({"signed_in": true, "user": new.session.user.name, "next": "/"})).into_response();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, auth::session_cookie(&new.secret, state.secure_cookies));
    h.append(header::SET_COOKIE, auth::clear_cookie(PRESIGN_COOKIE, "/sign-in"));
    Ok(response)
}

async fn sign_out(State(state): State<WebState>, me: Me) -> Result<Response, WebError> {
    web_sessions::end(&state.db, me.session.id).await?;
    let mut response = auth::see_other("/sign-in", Some("Signed out."));
    response.headers_mut().append(header::SET_COOKIE, auth::clear_cookie(web_sessions::COOKIE, "/"));
    Ok(response)
}
