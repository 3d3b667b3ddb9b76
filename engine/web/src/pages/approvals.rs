//! `/approvals`: the `approval` steps waiting for my decision, each with its question, its
//! deadline and what the timeout decides, and Approve / Reject with an optional comment.
//! The list and the decision follow the API's rules (`crm_store::run_waits`): only the role
//! the step names, and where it names a record only its owner, besides admins; the first
//! decision wins and a later one is refused, as in the chat.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use crm_concepts::wait::{Decision, MAX_COMMENT_CHARS};
use crm_store::run_history;
use crm_store::run_waits::{self, PendingApproval};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{self, Me};
use crate::error::WebError;
use crate::layout::{self, Section};
use crate::{WebState, display, today};

pub fn routes() -> Router<WebState> {
    Router::new().route("/approvals", get(list)).route("/approvals/{run_id}/{step}", post(decide))
}

async fn list(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    let user = me.user();
    let items = run_waits::approvals(&s.db.pool, None, Some((user.id, user.role.as_str())), 200).await?;
    let zone = today::zone_of(user);
    let body = html! {
        h1 { "Approvals" }
        p.hint { "What waits for your decision, the soonest deadline first. The people asked get the same question in their chat with the bot." }
        @if items.is_empty() { p.muted id="no-approvals" { "Nothing waits for your decision." } }
        ul.approvals id="approvals" {
            @for a in &items { (item(&me, a, zone)) }
        }
    };
    Ok(layout::page(&me, "Approvals", Section::Approvals, body))
}

fn item(me: &Me, a: &PendingApproval, zone: chrono_tz::Tz) -> Markup {
    html! {
        li.approval data-run-id=(a.run_id) data-step=(a.step) {
            p.approval-question { (a.text) }
            p.muted {
                a href={"/runs/" (a.run_id)} { (a.workflow) }
                " · decide by " (display::when(a.until, zone))
                " · without a decision it is " (a.on_timeout)
            }
            form.approval-decision method="post" action={"/approvals/" (a.run_id) "/" (a.step)} {
                (crate::forms::csrf(me.csrf()))
                label { "Comment (optional) " textarea name="comment" maxlength=(MAX_COMMENT_CHARS) rows="2" {} }
                button type="submit" name="decision" value="approved" { "Approve" }
                " "
                button.danger type="submit" name="decision" value="rejected" { "Reject" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct DecideForm {
    decision: String,
    #[serde(default)]
    comment: Option<String>,
}

async fn decide(
    State(s): State<WebState>,
    me: Me,
    Path((run_id, step)): Path<(Uuid, String)>,
    Form(f): Form<DecideForm>,
) -> Result<Response, WebError> {
    let scheduler =
        s.scheduler.as_ref().ok_or_else(|| WebError::Unavailable("This engine runs without a scheduler.".into()))?;
    let decision = match f.decision.as_str() {
        "approved" => Decision::Approved,
        "rejected" => Decision::Rejected,
        other => return Err(WebError::BadRequest(format!("a decision is approved or rejected, not {other:?}"))),
    };
    let comment = crate::forms::text(&f.comment);
    if comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
        return Err(WebError::BadRequest(format!("A comment is at most {MAX_COMMENT_CHARS} characters.")));
    }
    let Some(pending) = run_waits::approvals(&s.db.pool, Some((run_id, &step)), None, 1).await?.pop() else {
        // Decided by someone else (or timed out) since the page was drawn.
        run_history::get(&s.db.pool, run_id).await?;
        return Ok(auth::see_other("/approvals", Some("This was decided already; nothing changed.")));
    };
    let user = me.user();
    if let Some(why) = run_waits::refusal(&s.db.pool, &pending, user.id, user.role).await? {
        return Err(WebError::forbidden(why));
    }
    if !scheduler.decide(run_id, &step, decision, user.id, comment).await? {
        return Ok(auth::see_other("/approvals", Some("This was decided already; nothing changed.")));
    }
    let done = match decision {
        Decision::Approved => "Approved",
        Decision::Rejected => "Rejected",
    };
    Ok(auth::see_other("/approvals", Some(&format!("{done}: {} ({}).", pending.text, pending.workflow))))
}
