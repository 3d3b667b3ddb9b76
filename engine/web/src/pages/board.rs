//! The pipeline board: stages as columns with their counts and totals, deals as cards.
//! A card is dragged to another column (pointer events, so mouse, pen and touch alike) or,
//! from the keyboard, moved with the arrow keys; without scripts a card's title leads to
//! the deal's page and its move form. Every way ends in `POST /deals/{id}/move`, the API's
//! store call. Viewers see the same board; a move they try is refused by the server and
//! the card goes back.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use chrono::{Duration, Utc};
use crm_concepts::records::{Id, RecordKind};
use crm_store::{board, pipelines};
use maud::html;
use serde::Deserialize;

use super::parts::{self, People};
use crate::auth::Me;
use crate::error::WebError;
use crate::layout::{self, Section};
use crate::{WebState, display};

pub fn routes() -> Router<WebState> {
    Router::new().route("/board", get(show))
}

/// Cards shown per column; the rest are a link to the stage's deal list.
const CARDS_PER_STAGE: i64 = 50;
/// Won and lost columns show deals closed this recently.
const CLOSED_WITHIN_DAYS: i64 = 30;

#[derive(Debug, Deserialize)]
struct BoardQuery {
    pipeline: Option<Id>,
}

async fn show(State(s): State<WebState>, me: Me, Query(q): Query<BoardQuery>) -> Result<Response, WebError> {
    let all = pipelines::list(&s.db).await?;
    let Some(first) = all.first() else {
        let body = html! { h1 { "Board" } p.muted { "There is no pipeline yet." } };
        return Ok(layout::page(&me, "Board", Section::Board, body));
    };
    let pipeline_id = q.pipeline.unwrap_or(first.id);
    let since = Utc::now() - Duration::days(CLOSED_WITHIN_DAYS);
    let board = board::board(&s.db, pipeline_id, CARDS_PER_STAGE, since).await?;
    let people = People::load(&s.db).await?;
    let deals = board.columns.iter().flat_map(|c| c.deals.iter());
    let companies = parts::names(&s.db, RecordKind::Company, deals.clone().map(|d| d.company_id)).await?;
    let contacts = parts::names(&s.db, RecordKind::Contact, deals.map(|d| d.contact_id)).await?;
    let body = html! {
        div.title-row {
            h1 { "Board: " (board.pipeline.name) }
            @if all.len() > 1 {
                form.inline method="get" action="/board" {
                    select name="pipeline" aria-label="Pipeline" {
                        @for p in &all { option value=(p.id) selected[p.id == pipeline_id] { (p.name) } }
                    }
                    button type="submit" { "Show" }
                }
            }
            @if !me.can_write() { span.read-only { "Read only: your role cannot move deals" } }
        }
        p.hint #board-help {
            "Drag a card to another stage, or focus it and press ← or → to move it one stage. "
            "Won and lost show deals closed in the last " (CLOSED_WITHIN_DAYS) " days."
        }
        div.board id="board" data-pipeline=(pipeline_id) {
            @for col in &board.columns {
                section.column.{"kind-" (col.stage.kind.as_str())} id={"stage-" (col.stage.id)} data-stage-id=(col.stage.id) aria-label=(col.stage.name) {
                    header.column-head id={"stage-head-" (col.stage.id)} {
                        h2 { (col.stage.name) }
                        span.count title="deals" { (col.count) }
                        div.totals {
                            @for (currency, sum) in &col.totals { span.total { (display::money(*sum, currency)) } }
                        }
                    }
                    ol.cards data-stage-id=(col.stage.id) {
                        @for d in &col.deals {
                            li.card id={"deal-" (d.id)} tabindex="0" data-deal-id=(d.id) data-stage-id=(d.stage_id)
                                aria-describedby="board-help" {
                                a.title href={"/deals/" (d.id)} { (d.title) }
                                span.amount { (display::money(d.amount_minor, &d.currency)) }
                                @if d.company_id.is_some() || d.contact_id.is_some() {
                                    span.who {
                                        (parts::record_link(RecordKind::Company, d.company_id, &companies))
                                        @if d.company_id.is_some() && d.contact_id.is_some() { " · " }
                                        (parts::record_link(RecordKind::Contact, d.contact_id, &contacts))
                                    }
                                }
                                @if d.owner_id.is_some() { span.owner { (people.name(d.owner_id)) } }
                            }
                        }
                    }
                    @if col.count > col.deals.len() as i64 {
                        p.more { a href={"/deals?stage_id=" (col.stage.id) "&sort=-stage_changed_at"} { (col.count - col.deals.len() as i64) " more →" } }
                    }
                }
            }
        }
    };
    Ok(layout::page(&me, "Board", Section::Board, body))
}
