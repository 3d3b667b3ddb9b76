//! Who is asking, and whether a state-changing request really comes from this app's own
//! pages.
//!
//! [`guard`] runs before every page: it resolves the session cookie to a live session and,
//! for every request that may change something (anything but GET and HEAD), demands the
//! CSRF token: the session's own, or before sign-in the random value of the
//! `crm_presign` cookie (a double-submit token, so a sign-in form cannot be posted from
//! another site either). The token comes in the form field `_csrf` or, for the app's
//! `fetch` calls, the `X-CSRF-Token` header. A request whose `Origin` is another site is
//! refused too.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_store::web_sessions::{self, WebSession};

use crate::error::{ErrorNote, WebError};
use crate::{BODY_LIMIT, WebState};

/// The double-submit token of the sign-in forms, before there is a session.
pub const PRESIGN_COOKIE: &str = "crm_presign";
/// A one-line message for the next page ("Deal moved."), set by a redirect.
pub const FLASH_COOKIE: &str = "crm_flash";
/// The header the app's scripts send the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field forms send the CSRF token in.
pub const CSRF_FIELD: &str = "_csrf";

/// What the guard learnt about a request, for the extractors.
#[derive(Clone, Default)]
struct Seen {
    session: Option<Arc<WebSession>>,
    flash: Option<String>,
    presign: Option<String>,
}

/// The signed-in user of a page; pages that need one take this, and a visitor without a
/// session is sent to the sign-in page (and back afterwards).
#[derive(Clone)]
pub struct Me {
    pub session: Arc<WebSession>,
    /// the message a redirect left for this page
    pub flash: Option<String>,
}

impl Me {
    pub fn user(&self) -> &crm_concepts::user::User {
        &self.session.user
    }
    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }
    pub fn can_write(&self) -> bool {
        self.session.user.role.can_write()
    }
    pub fn is_admin(&self) -> bool {
        self.session.user.role.is_admin()
    }
    /// The same rule as the API's `Writer`: admins and managers change records.
    pub fn require_write(&self) -> Result<(), WebError> {
        if self.can_write() {
            Ok(())
        } else {
            Err(WebError::forbidden(format!("Your role ({}) can look but not change records.", self.user().role)))
        }
    }
    pub fn require_admin(&self) -> Result<(), WebError> {
        if self.is_admin() { Ok(()) } else { Err(WebError::forbidden("This needs an admin.")) }
    }
    pub fn actor(&self) -> crm_concepts::records::Actor {
        crm_concepts::records::Actor::user(self.user().id)
    }
}

impl FromRequestParts<WebState> for Me {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &WebState) -> Result<Self, Self::Rejection> {
        let seen = parts.extensions.get::<Seen>().cloned().unwrap_or_default();
        match seen.session {
            Some(session) => Ok(Me { session, flash: seen.flash }),
            None => {
                let next = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
                let next = if parts.method == Method::GET { next } else { "/".into() };
                Err(WebError::SignIn { next })
            }
        }
    }
}

/// A visitor of the sign-in pages: maybe signed in already, and the pre-session token
/// their forms must carry.
#[derive(Clone)]
pub struct Visitor {
    pub session: Option<Arc<WebSession>>,
    pub flash: Option<String>,
    /// the `crm_presign` value; `None` means the page must set a new one
    pub presign: Option<String>,
}

impl FromRequestParts<WebState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &WebState) -> Result<Self, Self::Rejection> {
        let seen = parts.extensions.get::<Seen>().cloned().unwrap_or_default();
        Ok(Visitor { session: seen.session, flash: seen.flash, presign: seen.presign })
    }
}

/// Resolves the session, checks the CSRF token of state-changing requests, and answers
/// the app's `fetch` calls with JSON errors.
pub async fn guard(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let cookies = Cookies::of(req.headers());
    let session = match cookies.get(web_sessions::COOKIE) {
        Some(secret) => match web_sessions::authenticate(&state.db, secret).await {
            Ok(s) => s.map(Arc::new),
            Err(e) => return WebError::from(e).into_response(),
        },
        None => None,
    };
    let flash = cookies
        .get(FLASH_COOKIE)
        .and_then(|v| serde_urlencoded::from_str::<Vec<(String, String)>>(v).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "m").map(|(_, v)| v));
    let presign = cookies.get(PRESIGN_COOKIE).filter(|v| v.len() >= 16 && v.len() <= 100).map(str::to_string);
    let wants_json = accepts_json(req.headers());
    let had_flash = flash.is_some();

    let req = if req.method() == Method::GET || req.method() == Method::HEAD {
        req
    } else {
        // A signed-in browser may sign in again (another link, the Mini App): the sign-in
        // forms carry the pre-session token, which stands beside the session's own there.
        let mut expected: Vec<String> = session.iter().map(|s| s.csrf_token.clone()).collect();
        if req.uri().path().starts_with("/sign-in")
            && let Some(p) = &presign
        {
            expected.push(p.clone());
        }
        match check_csrf(req, &expected).await {
            Ok(req) => req,
            Err(refusal) => return answer(refusal.into_response(), wants_json),
        }
    };

    let mut req = req;
    req.extensions_mut().insert(Seen { session, flash, presign });
    let mut response = next.run(req).await;
    // A flash message is shown once: the page that showed it clears it.
    let sets_flash = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|c| c.to_str().is_ok_and(|c| c.starts_with(FLASH_COOKIE)));
    if had_flash && response.status() == StatusCode::OK && !sets_flash {
        response.headers_mut().append(header::SET_COOKIE, clear_cookie(FLASH_COOKIE, "/"));
    }
    answer(response, wants_json)
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.starts_with("application/json"))
}

/// An error page becomes the API's error shape for a caller that asked for JSON.
fn answer(response: Response, wants_json: bool) -> Response {
    if !wants_json {
        return response;
    }
    match response.extensions().get::<ErrorNote>().cloned() {
        Some(note) => {
            let body = serde_json::json!({"error": {"code": note.code, "message": note.message, "fields": []}});
            (response.status(), axum::Json(body)).into_response()
        }
        None => response,
    }
}

/// Lets the request through when it carries one of the `expected` tokens (and does not
/// come from another site); the body is read to find the form field and handed on unchanged.
async fn check_csrf(req: Request, expected: &[String]) -> Result<Request, WebError> {
    let refused = || {
        WebError::forbidden(
            "This request was refused: it did not carry this page's security token (CSRF). \
             Reload the page and try again.",
        )
    };
    if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin != "null" && origin_host != host {
            return Err(WebError::forbidden("This request came from another site and was refused."));
        }
    }
    if expected.is_empty() {
        return Err(refused());
    }
    let matches = |token: &str| expected.iter().any(|e| same(token, e));
    let header_token = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(token) = header_token {
        return if matches(&token) { Ok(req) } else { Err(refused()) };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refused());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| WebError::BadRequest("The form is too large.".into()))?;
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v));
    match token {
        Some(t) if matches(&t) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(refused()),
    }
}

/// Compares tokens in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The cookies of a request.
pub struct Cookies<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Cookies<'a> {
    pub fn of(headers: &'a HeaderMap) -> Cookies<'a> {
        let pairs = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .collect();
        Cookies(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

/// A `Set-Cookie` value: HttpOnly always; `Secure` when the app is served over HTTPS.
pub fn cookie(name: &str, value: &str, path: &str, same_site: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
}

pub fn clear_cookie(name: &str, path: &str) -> HeaderValue {
    cookie(name, "", path, "Lax", Some(0), false)
}

/// The session cookie for a new session (no Max-Age: the server decides when it ends, and
/// the browser forgets it when it closes).
pub fn session_cookie(secret: &str, secure: bool) -> HeaderValue {
    cookie(web_sessions::COOKIE, secret, "/", "Lax", None, secure)
}

/// A redirect after a POST (303, so the next request is a GET), with a message for the
/// page it leads to.
pub fn see_other(location: &str, flash: Option<&str>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_string())]).into_response();
    if let Some(message) = flash {
        let value = serde_urlencoded::to_string([("m", message)]).unwrap_or_default();
        response.headers_mut().append(header::SET_COOKIE, cookie(FLASH_COOKIE, &value, "/", "Lax", Some(60), false));
    }
    response
}

/// A local path to go back to after signing in: never another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n.to_string(),
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/deals?stage=2")), "/deals?stage=2");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }
}
