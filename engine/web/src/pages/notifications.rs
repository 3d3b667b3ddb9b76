//! `/notifications`: chat messages workflows sent, by delivery status; undeliverable ones
//! first, with the reason. An admin sees everyone's, anyone else their own (the API's rule).

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use crm_store::notifications::{self, DeliveryStatus, ListQuery};
use maud::html;
use serde::Deserialize;

use super::parts::{self, People};
use crate::auth::Me;
use crate::error::WebError;
use crate::layout::{self, Section};
use crate::{WebState, display, forms, today};

pub fn routes() -> Router<WebState> {
    Router::new().route("/notifications", get(list))
}

#[derive(Debug, Deserialize)]
struct Params {
    status: Option<String>,
    cursor: Option<String>,
}

async fn list(State(s): State<WebState>, me: Me, Query(p): Query<Params>) -> Result<Response, WebError> {
    let status_text = p.status.clone().unwrap_or_else(|| "undeliverable".into());
    let status = match status_text.as_str() {
        "all" => None,
        other => Some(
            DeliveryStatus::parse(other).ok_or_else(|| WebError::BadRequest(format!("unknown status {other:?}")))?,
        ),
    };
    let user_id = if me.is_admin() { None } else { Some(me.user().id) };
    let q = ListQuery { user_id, status, limit: 50, cursor: forms::text(&p.cursor) };
    let (items, next) = notifications::list(&s.db, &q).await?;
    let people = People::load(&s.db).await?;
    let zone = today::zone_of(me.user());
    let body = html! {
        h1 { "Notifications" }
        nav.tabs aria-label="Delivery status" {
            @for st in ["undeliverable", "pending", "delivered", "all"] {
                a href={"/notifications?status=" (st)} aria-current=[(st == status_text).then_some("page")] { (st) }
            }
        }
        @if items.is_empty() { p.muted { "None." } }
        table.records id="notifications" {
            thead { tr { th { "When" } th { "To" } th { "Message" } th { "Workflow" } th { "Delivery" } } }
            tbody {
                @for n in &items {
                    tr {
                        td { (display::when(n.created_at, zone)) }
                        td { (people.name(Some(n.user_id))) }
                        td { pre.message { (n.text) } }
                        td {
                            @if let Some(run) = n.run_id { a href={"/runs/" (run)} { (n.workflow.as_deref().unwrap_or("run")) } }
                        }
                        td {
                            @if let Some(at) = n.delivered_at { "delivered " (display::when(at, zone)) }
                            @else if let Some(reason) = &n.undeliverable_reason { span.status.status-failed { "undeliverable" } " " (reason) }
                            @else { "pending" }
                        }
                    }
                }
            }
        }
        (parts::pager("/notifications", &[("status", Some(status_text.as_str()))], next.as_deref(), p.cursor.is_some()))
    };
    Ok(layout::page(&me, "Notifications", Section::Notifications, body))
}
