//! The stylesheet and the script, compiled into the binary (no build chain, no CDN) and
//! served under a name that changes with their content, so browsers may cache them for
//! good.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");
const ICON: &str = include_str!("../static/icon.svg");

static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    h.update(CSS);
    h.update(JS);
    h.update(ICON);
    hex::encode(&h.finalize()[..6])
});

pub fn css_url() -> String {
    format!("/static/{}/app.css", *VERSION)
}

pub fn js_url() -> String {
    format!("/static/{}/app.js", *VERSION)
}

pub fn icon_url() -> String {
    format!("/static/{}/icon.svg", *VERSION)
}

/// `GET /static/{version}/{file}`: an old version's name still serves the current file
/// (a page rendered before a deploy keeps working), but is not cached as that version.
pub async fn serve(Path((version, file)): Path<(String, String)>) -> Response {
    let (body, content_type) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    let cache = if version == *VERSION { "public, max-age=31536000, immutable" } else { "no-cache" };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], body).into_response()
}
