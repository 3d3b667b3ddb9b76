//! The web app `crm serve` serves at `/`: records, the pipeline board, tasks, workflows
//! and run history, and admin pages, rendered on the server (maud) with a little plain
//! JavaScript for dragging cards, one-click actions and live run pages. It opens in a
//! browser and, inside Telegram, as a Mini App.
//!
//! Every page calls the same store and scheduler functions as the API (`crm_api`), with
//! the same role checks (`Role::can_write`, `Role::is_admin`), so a viewer cannot do here
//! what the API refuses, and a form shows the API's validation messages.
//!
//! Sign-in ends in a browser session kept in Postgres (`crm_store::web_sessions`) behind
//! an HttpOnly, SameSite=Lax cookie. Every state-changing request carries the session's
//! CSRF token (see [`auth`]); every page has a strict Content-Security-Policy without
//! inline scripts or styles (see [`security`]); maud escapes every value it renders.

mod assets;
pub mod auth;
mod display;
mod error;
mod forms;
mod layout;
mod pages;
pub mod security;
pub mod telegram;
pub mod today;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use crm_store::Db;

pub use error::WebError;

/// Form posts are small; a larger body is refused before it is read.
pub const BODY_LIMIT: usize = 256 * 1024;

/// What every page handler can reach. Cloned per request: keep fields cheap to clone.
#[derive(Clone)]
pub struct WebState {
    pub db: Db,
    /// cancels runs from the run page; `None` where no scheduler runs (the run pages then
    /// show history only)
    pub scheduler: Option<crm_scheduler::Scheduler>,
    /// the Telegram bot's token (`CRM_BOT_TOKEN`): Mini App `initData` is signed with it;
    /// without it, Mini App sign-in is refused
    pub bot_token: Option<Arc<str>>,
    /// set `Secure` on cookies: the app is reached over HTTPS (`CRM_PUBLIC_URL`)
    pub secure_cookies: bool,
    /// the currency of an amount typed without one (`CRM_DEFAULT_CURRENCY`)
    pub default_currency: Arc<str>,
}

impl WebState {
    pub fn new(db: Db) -> WebState {
        WebState { db, scheduler: None, bot_token: None, secure_cookies: false, default_currency: "USD".into() }
    }
}

/// Every page of the web app, with its guards: sessions and CSRF checks ([`auth::guard`])
/// and security headers ([`security::headers`]). Merge it with the API's router: its paths
/// (`/`, `/contacts`, `/board`, `/sign-in`, `/static/…`) do not overlap `/api`.
pub fn router(state: WebState) -> Router {
    pages::routes()
        .layer(middleware::from_fn_with_state(state.clone(), auth::guard))
        // Files need no session: outside the guard, so they cost no database query.
        .route("/static/{version}/{file}", axum::routing::get(assets::serve))
        .layer(middleware::from_fn(security::headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
