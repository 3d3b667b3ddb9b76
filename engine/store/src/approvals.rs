//! Approvals in the chat. An `approval` step that starts waiting gets a short id (what its
//! buttons carry: Telegram's callback data holds 64 bytes, too few for a run uuid and a step
//! name) and a notification with Approve / Reject buttons for each person asked: the owner
//! of the record when the step names one (and may decide), else everyone of the role. When
//! it ends (decided, timed out, or its run ended first) every delivered message gets an edit
//! notification that turns it into the outcome; one delivered later is edited as soon as the
//! bot reports it (see [`crate::notifications::delivered`]).
//!
//! Both writers lock the `approvals` row first, so an outcome and a delivery report that
//! cross never leave a message with live buttons behind.

use chrono::{DateTime, Utc};
use crm_concepts::notification_frame::Frame;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::run_waits::NewWait;
use crate::workflow_error::WorkflowError;

/// At most this many people are asked one approval (a CRM with more managers is asked
/// through `/approvals` and the API).
const MAX_ASKED: i64 = 50;
/// The question as the message shows it is cut here (a notification holds 4096 characters).
const MAX_QUESTION_CHARS: usize = 3000;

/// How an approval ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub run_id: Uuid,
    pub step: String,
    /// `None`: the run ended (cancelled, failed) before anyone decided
    pub decision: Option<String>,
    pub decided_by: Option<i64>,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { text.chars().take(max - 1).chain(['…']).collect() }
}

/// What every message asking an approval shares, kept as `approvals.ask` so the bot can
/// frame it in each reader's language (see [`Frame`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ask {
    workflow: String,
    question: String,
    on_timeout: String,
}

impl Ask {
    /// The frame of the message `zone`'s reader gets: the deadline in their own time.
    fn frame(&self, deadline: DateTime<Utc>, zone: &str) -> Frame {
        let zone = crm_concepts::local_time::zone(zone).unwrap_or(chrono_tz::Tz::UTC);
        Frame::ApprovalAsk {
            workflow: self.workflow.clone(),
            question: self.question.clone(),
            deadline: crm_concepts::local_time::format(deadline, zone, zone),
            on_timeout: self.on_timeout.clone(),
        }
    }
}

/// How an approval ended, kept as `approvals.ended`; with [`Ask`] it is the frame of the
/// messages' edit (`Frame::ApprovalOutcome`, put together in SQL by [`edit_delivered`]).
#[derive(Debug, Clone, Serialize)]
struct EndedFrame<'a> {
    decision: Option<&'a str>,
    by: Option<&'a str>,
    at: String,
    comment: Option<String>,
}

/// The message an approval's buttons go under: the question, then the deadline.
fn question(workflow: &str, text: &str) -> String {
    format!("🗳 Approval needed ({workflow})\n{}", cut(text, MAX_QUESTION_CHARS))
}

/// The approval's message as `zone`'s reader gets it: the deadline in their own time. The
/// stored message (the web page, late edits) keeps it in UTC.
fn for_reader(message: &str, deadline: DateTime<Utc>, zone: &str) -> String {
    let zone = crm_concepts::local_time::zone(zone).unwrap_or(chrono_tz::Tz::UTC);
    match message.split_once("\n\nDecide by ").and_then(|(q, rest)| Some((q, rest.split_once("; ")?.1))) {
        Some((question, tail)) => {
            format!("{question}\n\nDecide by {}; {tail}", crm_concepts::local_time::format(deadline, zone, zone))
        }
        None => message.to_string(),
    }
}

/// Inserts the asking message of approval `id` for each of `users`, with its buttons
/// (`ask`: its frame's parts; `None` for an approval from before frames, sent as text).
async fn ask(
    conn: &mut PgConnection,
    id: i64,
    users: &[i64],
    message: &str,
    ask: Option<&Ask>,
    deadline: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    let zones: Vec<(i64, String)> = sqlx::query_as("SELECT id, time_zone FROM users WHERE id = ANY($1) ORDER BY id")
        .bind(users)
        .fetch_all(&mut *conn)
        .await?;
    let mut ids = Vec::with_capacity(zones.len());
    let mut texts = Vec::with_capacity(zones.len());
    let mut frames = Vec::with_capacity(zones.len());
    for (user, zone) in zones {
        ids.push(user);
        texts.push(for_reader(message, deadline, &zone));
        frames.push(ask.map(|a| Json(a.frame(deadline, &zone))));
    }
    sqlx::query(
        "INSERT INTO notifications (user_id, text, frame, run_id, step, workflow, approval_id)
         SELECT u.id, u.text, u.frame, a.run_id, a.step, a.workflow, a.id
         FROM UNNEST($1::bigint[], $2::text[], $4::jsonb[]) AS u (id, text, frame), approvals a WHERE a.id = $3",
    )
    .bind(&ids)
    .bind(&texts)
    .bind(id)
    .bind(&frames)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Opens the approvals of steps that just started waiting (other waits are ignored) and
/// asks the people who should decide, in the caller's transaction. A step asked again (a
/// retried run) keeps its id and is open again.
pub async fn open(conn: &mut PgConnection, waits: &[NewWait]) -> Result<(), WorkflowError> {
    for w in waits.iter().filter(|w| w.kind == "approval") {
        let workflow: String =
            sqlx::query_scalar("SELECT workflow FROM runs WHERE id = $1").bind(w.run_id).fetch_one(&mut *conn).await?;
        let asked = Ask {
            question: cut(w.detail["text"].as_str().unwrap_or_default(), MAX_QUESTION_CHARS),
            on_timeout: w.detail["on_timeout"].as_str().unwrap_or("rejected").to_string(),
            workflow,
        };
        let text = format!(
            "{}\n\nDecide by {} UTC; without a decision it is {}.",
            question(&asked.workflow, &asked.question),
            w.wake_at.format("%Y-%m-%d %H:%M"),
            asked.on_timeout,
        );
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO approvals (run_id, step, workflow, message, ask) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (run_id, step) DO UPDATE SET outcome = NULL, ended = NULL, message = $4, ask = $5,
                 created_at = now()
             RETURNING id",
        )
        .bind(w.run_id)
        .bind(&w.step)
        .bind(&asked.workflow)
        .bind(&text)
        .bind(Json(&asked))
        .fetch_one(&mut *conn)
        .await?;
        let role = w.detail["role"].as_str().unwrap_or("admin");
        let owner = match w.detail.get("owner_of").filter(|o| !o.is_null()) {
            Some(o) => {
                Some(owner_in(conn, o["record"].as_str().unwrap_or_default(), o["id"].as_i64().unwrap_or(0)).await?)
            }
            None => None,
        };
        let mut people = match owner {
            None => recipients(conn, role, None).await?,
            Some(Some(owner)) => recipients(conn, role, Some(owner)).await?,
            Some(None) => Vec::new(),
        };
        if people.is_empty() && owner.is_some() {
            // The owner may not decide (no owner, or not of the role): the admins, who
            // always may, are asked instead.
            people = recipients(conn, "admin", None).await?;
        }
        if people.is_empty() {
            continue;
        }
        ask(conn, id, &people, &text, Some(&asked), w.wake_at).await?;
    }
    Ok(())
}

/// Active users with a linked Telegram account who may decide for `role` (`owner`: only
/// that one).
async fn recipients(conn: &mut PgConnection, role: &str, owner: Option<i64>) -> Result<Vec<i64>, WorkflowError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM users
         WHERE disabled_at IS NULL AND telegram_user_id IS NOT NULL
           AND (role = 'admin' OR (role = 'manager' AND $1 = 'manager'))
           AND ($2::bigint IS NULL OR id = $2)
         ORDER BY id LIMIT $3",
    )
    .bind(role)
    .bind(owner)
    .bind(MAX_ASKED)
    .fetch_all(&mut *conn)
    .await?)
}

/// The owner of a deal, contact or company (`None`: no such record, or no owner).
pub async fn owner_in(conn: &mut PgConnection, record: &str, id: i64) -> Result<Option<i64>, WorkflowError> {
    // The table comes from this fixed list, never from the caller's text.
    let sql = match record {
        "deal" => "SELECT owner_id FROM deals WHERE id = $1",
        "contact" => "SELECT owner_id FROM contacts WHERE id = $1",
        "company" => "SELECT owner_id FROM companies WHERE id = $1",
        _ => return Ok(None),
    };
    let owner: Option<Option<i64>> = sqlx::query_scalar(sql).bind(id).fetch_optional(&mut *conn).await?;
    Ok(owner.flatten())
}

/// When an approval ended, as its messages show it.
fn ended_at(e: &Ended) -> String {
    e.at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The comment an ended approval's messages show, if any.
fn comment(e: &Ended) -> Option<String> {
    e.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(|c| cut(c, 500))
}

/// The outcome line an ended approval's messages show.
fn outcome(e: &Ended, by: Option<&str>) -> String {
    let at = ended_at(e);
    let mut line = match (e.decision.as_deref(), by) {
        (Some("approved"), Some(name)) => format!("✅ Approved by {name} at {at}"),
        (Some(_), Some(name)) => format!("❌ Rejected by {name} at {at}"),
        (Some(d), None) => format!("⌛ Nobody decided in time: {d} at {at}"),
        (None, _) => format!("🚫 No longer needed: the run ended at {at} before a decision"),
    };
    if let Some(c) = comment(e) {
        line.push_str(&format!("\n💬 {c}"));
    }
    line
}

/// Records how approvals ended and turns their delivered messages into the outcome, in
/// the caller's transaction. An approval that had ended already is left as it was.
pub async fn close(conn: &mut PgConnection, ended: &[Ended]) -> Result<(), WorkflowError> {
    if ended.is_empty() {
        return Ok(());
    }
    let deciders: Vec<i64> = ended.iter().filter_map(|e| e.decided_by).collect();
    let names: std::collections::HashMap<i64, String> =
        sqlx::query_as::<_, (i64, String)>("SELECT id, name FROM users WHERE id = ANY($1)")
            .bind(&deciders)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let runs: Vec<Uuid> = ended.iter().map(|e| e.run_id).collect();
    let steps: Vec<&str> = ended.iter().map(|e| e.step.as_str()).collect();
    let by: Vec<Option<String>> = ended
        .iter()
        .map(|e| e.decided_by.map(|id| names.get(&id).map_or_else(|| format!("user {id}"), Clone::clone)))
        .collect();
    let outcomes: Vec<String> = ended.iter().zip(&by).map(|(e, by)| outcome(e, by.as_deref())).collect();
    let frames: Vec<Json<EndedFrame<'_>>> = ended
        .iter()
        .zip(&by)
        .map(|(e, by)| {
            Json(EndedFrame {
                decision: e.decision.as_deref(),
                by: by.as_deref(),
                at: ended_at(e),
                comment: comment(e),
            })
        })
        .collect();
    // Two statements, not one: the edits below must see message ids a delivery report
    // committed while this one waited for the approval's lock, and only a new statement
    // takes a new snapshot.
    let closed: Vec<i64> = sqlx::query_scalar(
        "UPDATE approvals a SET outcome = u.o, ended = u.e
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) AS u (r, s, o, e)
         WHERE a.run_id = u.r AND a.step = u.s AND a.outcome IS NULL
         RETURNING a.id",
    )
    .bind(&runs)
    .bind(&steps)
    .bind(&outcomes)
    .bind(&frames)
    .fetch_all(&mut *conn)
    .await?;
    Ok(edit_delivered(conn, &closed, None).await?)
}

/// Adds the edit notification of each delivered message of these ended approvals that has
/// none yet (`only`: of that one notification).
pub(crate) async fn edit_delivered(
    conn: &mut PgConnection,
    approvals: &[i64],
    only: Option<i64>,
) -> Result<(), sqlx::Error> {
    if approvals.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO notifications (user_id, text, frame, run_id, step, workflow, edit_of)
         SELECT n.user_id, split_part(a.message, E'\\n\\nDecide by ', 1) || E'\\n\\n' || a.outcome,
                '{\"kind\": \"approval_outcome\"}'::jsonb || (a.ask - 'on_timeout') || a.ended,
                n.run_id, n.step, n.workflow, n.id
         FROM notifications n JOIN approvals a ON a.id = n.approval_id
         WHERE a.id = ANY($1) AND a.outcome IS NOT NULL AND n.edit_of IS NULL AND n.message_id IS NOT NULL
           AND ($2::bigint IS NULL OR n.id = $2)
         ON CONFLICT (edit_of) DO NOTHING",
    )
    .bind(approvals)
    .bind(only)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The run and step an approval id names.
pub async fn step_of(pool: &sqlx::PgPool, id: i64) -> Result<Option<(Uuid, String)>, WorkflowError> {
    Ok(sqlx::query_as("SELECT run_id, step FROM approvals WHERE id = $1").bind(id).fetch_optional(pool).await?)
}

/// Asks `user` again, with buttons, for each of these approvals still waiting.
pub async fn ask_again(pool: &sqlx::PgPool, user: i64, ids: &[i64]) -> Result<(), WorkflowError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut conn = pool.acquire().await?;
    #[derive(sqlx::FromRow)]
    struct Open {
        id: i64,
        message: String,
        ask: Option<Json<Ask>>,
        wake_at: DateTime<Utc>,
    }
    let open: Vec<Open> = sqlx::query_as(
        "SELECT a.id, a.message, a.ask, w.wake_at FROM approvals a JOIN run_waits w ON (w.run_id, w.step) = (a.run_id, a.step)
         WHERE a.id = ANY($1) AND a.outcome IS NULL",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    for o in open {
        ask(&mut conn, o.id, &[user], &o.message, o.ask.as_ref().map(|a| &a.0), o.wake_at).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_person_reads_the_deadline_in_their_own_zone() {
        let message = "🗳 Approval needed (discount)\nGive 25% off?\n\nDecide by 2026-12-05 10:00 UTC; without a decision it is rejected.";
        let deadline = "2026-12-05T10:00:00Z".parse().unwrap();
        assert_eq!(
            for_reader(message, deadline, "Asia/Tokyo"),
            "🗳 Approval needed (discount)\nGive 25% off?\n\nDecide by 2026-12-05 19:00; without a decision it is rejected."
        );
        assert!(for_reader(message, deadline, "UTC").contains("Decide by 2026-12-05 10:00; without"));
        assert_eq!(for_reader("no deadline here", deadline, "UTC"), "no deadline here");
    }
}
