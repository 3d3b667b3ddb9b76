//! `/search`: the fuzzy search over contacts, companies and deals that the API's
//! `/api/search` and the bot's `/find` use.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use crm_store::search;
use maud::html;
use serde::Deserialize;

use crate::auth::Me;
use crate::error::WebError;
use crate::layout::{self, Section};
use crate::{WebState, display, forms};

pub fn routes() -> Router<WebState> {
    Router::new().route("/search", get(show))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

async fn show(State(s): State<WebState>, me: Me, Query(q): Query<SearchQuery>) -> Result<Response, WebError> {
    let text = forms::text(&q.q);
    let hits = match &text {
        Some(t) => search::search(&s.db, t, &[], 30).await?,
        None => Vec::new(),
    };
    let body = html! {
        h1 { "Search" }
        form.search-box method="get" action="/search" role="search" {
            input type="search" name="q" value=(text.as_deref().unwrap_or_default()) placeholder="Find contacts, companies and deals" aria-label="Search";
            button type="submit" { "Search" }
        }
        @if text.is_some() && hits.is_empty() { p.muted { "Nothing matches." } }
        ol.hits id="hits" {
            @for h in &hits {
                li {
                    span.kind { (h.kind) } " "
                    a href=(display::record_path(h.kind, h.id)) { (h.title) }
                    @if let Some(sub) = &h.subtitle { " " span.muted { (sub) } }
                }
            }
        }
    };
    Ok(layout::page(&me, "Search", Section::Home, body))
}
