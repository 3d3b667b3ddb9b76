//! `/api/docs`: a page that renders `/api/openapi.json` for people, grouped by tag. The page,
//! its script and its style are separate files so the policy can refuse every inline script
//! and style; the script inserts document text only as text, never as markup.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Only this origin's script, style and fetches; nothing inline, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../../assets/docs.html");
const SCRIPT: &str = include_str!("../../assets/docs.js");
const STYLE: &str = include_str!("../../assets/docs.css");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(page)).routes(routes!(script)).routes(routes!(style))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

/// Browsable API docs
#[utoipa::path(
    get, path = "/api/docs", tag = "docs", operation_id = "docs_page",
    responses((status = 200, description = "the page", content_type = "text/html", body = String)),
)]
async fn page() -> impl IntoResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// The docs page's script
#[utoipa::path(
    get, path = "/api/docs.js", tag = "docs", operation_id = "docs_script",
    responses((status = 200, description = "the script", content_type = "text/javascript", body = String)),
)]
async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The docs page's style
#[utoipa::path(
    get, path = "/api/docs.css", tag = "docs", operation_id = "docs_style",
    responses((status = 200, description = "the style sheet", content_type = "text/css", body = String)),
)]
async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use super::{CONTENT_SECURITY_POLICY, PAGE, SCRIPT};
    use crate::AppState;

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let router = crate::router(AppState::unreachable());
        let response = router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn page_script_and_style_are_served_under_the_policy() {
        for (path, content_type) in
            [("/api/docs", "text/html"), ("/api/docs.js", "text/javascript"), ("/api/docs.css", "text/css")]
        {
            let (status, headers, body) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(content_type), "{path}");
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY, "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert!(!body.is_empty(), "{path}");
        }
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'self'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline") && !CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
    }

    #[tokio::test]
    async fn the_page_renders_the_served_document() {
        let (_, _, page) = get("/api/docs").await;
        assert!(page.contains(r#"data-spec="/api/openapi.json""#), "the page names the document it renders");
        assert!(page.contains(r#"<script src="/api/docs.js""#) && page.contains(r#"href="/api/docs.css""#));
        let (status, headers, doc) = get("/api/openapi.json").await;
        assert_eq!((status, &headers[header::CONTENT_TYPE]), (StatusCode::OK, &"application/json".parse().unwrap()));
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert!(doc["paths"]["/api/docs"]["get"].is_object());
    }

    /// The policy refuses inline code anyway; this keeps the page from depending on it, and
    /// the script from turning document text into markup.
    #[test]
    fn nothing_inline_and_no_markup_from_data() {
        assert_eq!(PAGE.matches("<script").count(), PAGE.matches("<script src=").count(), "inline script");
        assert!(!PAGE.contains("<style") && !PAGE.contains(" style="), "inline style");
        let handler = PAGE.match_indices(" on").any(|(i, _)| {
            let name: String = PAGE[i + 3..].chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && PAGE[i + 3 + name.len()..].starts_with('=')
        });
        assert!(!handler, "inline event handler");
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            assert!(!SCRIPT.contains(sink), "docs.js uses {sink}");
        }
    }
}
