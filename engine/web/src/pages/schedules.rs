//! `/schedules`: every cron schedule with its next fire times (what `/api/schedules` and
//! the bot's `/schedules` show).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use maud::html;

use crate::auth::Me;
use crate::error::WebError;
use crate::layout::{self, Section};
use crate::{WebState, display, today};

pub fn routes() -> Router<WebState> {
    Router::new().route("/schedules", get(list))
}

async fn list(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    let all = crm_triggers::schedules::list(&s.db.pool, 3).await.map_err(|e| WebError::Internal(e.to_string()))?;
    let zone = today::zone_of(me.user());
    let body = html! {
        h1 { "Schedules" }
        @if all.is_empty() { p.muted { "No workflow runs on a schedule." } }
        table.records id="schedules" {
            thead { tr { th { "Workflow" } th { "Schedule" } th { "State" } th { "Next runs" } } }
            tbody {
                @for sc in &all {
                    tr {
                        td { a href={"/workflows/" (sc.workflow)} { (sc.workflow) } }
                        td { code { (sc.expression) } " " (sc.timezone) }
                        td { @if sc.enabled { "on" } @else { "off" } }
                        td { @for t in &sc.next_fire_times { (display::when(*t, zone)) br; } }
                    }
                }
            }
        }
    };
    Ok(layout::page(&me, "Schedules", Section::Schedules, body))
}
