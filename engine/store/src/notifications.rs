//! Chat messages steps send to CRM users (capability `notify`); the bot delivers them.
//!
//! A notification is pending until the bot reports it delivered, or undeliverable with a
//! reason (no linked Telegram account, Telegram refused the chat). Pending ones are served
//! again after every reconnect of the bot, so delivery is at least once, and a row's
//! outcome is written once: a late second report changes nothing.

use chrono::{DateTime, Utc};
use crm_concepts::message_button::Button;
use crm_concepts::notification_frame::Frame;
use crm_concepts::press_outcome::PressOutcome;
use serde::Serialize;
use sqlx::postgres::PgListener;
use sqlx::{AssertSqlSafe, PgConnection};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::cursor::Cursor;
use crate::{Db, StoreError};

/// The Postgres channel a commit that added notifications signals on (migration 0006).
pub const CHANNEL: &str = "crm_notifications";

/// The longest reason kept for an undeliverable notification (the column allows 1000).
pub const MAX_REASON_CHARS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Undeliverable,
}

impl DeliveryStatus {
    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "undeliverable" => Some(DeliveryStatus::Undeliverable),
            _ => None,
        }
    }

    fn condition(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "n.delivered_at IS NULL AND n.undeliverable_at IS NULL",
            DeliveryStatus::Delivered => "n.delivered_at IS NOT NULL",
            DeliveryStatus::Undeliverable => "n.undeliverable_at IS NOT NULL",
        }
    }
}

// Sent with every field, `null` when unset: `#[schema(required)]` keeps the `Option`s
// required in the OpenAPI document, which would otherwise make them optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, ToSchema)]
pub struct Notification {
    pub id: i64,
    pub user_id: i64,
    /// the chat to deliver to (a private chat's id is the Telegram user id); `None` while
    /// the user has not linked Telegram or is disabled
    #[schema(required)]
    pub telegram_user_id: Option<i64>,
    pub text: String,
    #[schema(required)]
    pub run_id: Option<Uuid>,
    #[schema(required)]
    pub step: Option<String>,
    #[schema(required)]
    pub workflow: Option<String>,
    pub created_at: DateTime<Utc>,
    #[schema(required)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub undeliverable_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub undeliverable_reason: Option<String>,
    /// the approval whose Approve / Reject buttons the message carries
    #[schema(required)]
    pub approval_id: Option<i64>,
    /// the Telegram message it was delivered as
    #[schema(required)]
    pub message_id: Option<i64>,
    /// set on an edit: the message (in the same chat) whose text this replaces, its
    /// buttons gone
    #[schema(required)]
    pub edit_message_id: Option<i64>,
    /// the labels of the buttons the workflow put under the message, in order; a press
    /// names one by its position (`POST /api/notifications/{id}/press`)
    pub buttons: Vec<String>,
    /// the recipient's language setting (`en`, `ru`); `None`: they follow their Telegram
    /// app's, which only the bot knows
    #[schema(required)]
    pub language: Option<String>,
    /// the bot's own framing around `text` (an approval's question and deadline, or how it
    /// ended), for the bot to write in the recipient's language; `text` is it in English
    #[schema(required, value_type = Option<Frame>)]
    pub frame: Option<sqlx::types::Json<Frame>>,
    /// what the press of one of its buttons did, in English; `None`: not pressed (or the
    /// press is still being carried out)
    #[schema(required)]
    pub pressed: Option<String>,
    /// the same as data, for the bot to say in the presser's language; `None` on presses
    /// from before it was kept
    #[schema(required, value_type = Option<PressOutcome>)]
    pub press_outcome: Option<sqlx::types::Json<PressOutcome>>,
}

impl Notification {
    pub fn status(&self) -> DeliveryStatus {
        if self.delivered_at.is_some() {
            DeliveryStatus::Delivered
        } else if self.undeliverable_at.is_some() {
            DeliveryStatus::Undeliverable
        } else {
            DeliveryStatus::Pending
        }
    }
}

const SELECT: &str =
    "SELECT n.id, n.user_id, CASE WHEN u.disabled_at IS NULL THEN u.telegram_user_id END AS telegram_user_id,
        n.text, n.run_id, n.step, n.workflow, n.created_at, n.delivered_at, n.undeliverable_at, n.undeliverable_reason,
        n.approval_id, n.message_id, o.message_id AS edit_message_id,
        ARRAY(SELECT b->>'label' FROM jsonb_array_elements(n.buttons) b) AS buttons, u.language, n.frame,
        n.pressed, n.press_outcome
    FROM notifications n JOIN users u ON u.id = n.user_id LEFT JOIN notifications o ON o.id = n.edit_of";

/// Who sent a notification: the run and step, for the bot to link back to.
#[derive(Debug, Clone, Default)]
pub struct Origin<'a> {
    pub run_id: Option<Uuid>,
    pub step: Option<&'a str>,
    pub workflow: Option<&'a str>,
}

pub async fn add(db: &Db, user_id: i64, text: &str, origin: Origin<'_>) -> Result<i64, StoreError> {
    add_in(&mut *db.pool.acquire().await?, user_id, text, &[], origin).await
}

/// [`add`] inside the caller's transaction; the bot hears of it when that commits.
pub async fn add_in(
    conn: &mut PgConnection,
    user_id: i64,
    text: &str,
    buttons: &[Button],
    origin: Origin<'_>,
) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar(
        "INSERT INTO notifications (user_id, text, buttons, run_id, step, workflow)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(user_id)
    .bind(text)
    .bind(sqlx::types::Json(buttons))
    .bind(origin.run_id)
    .bind(origin.step)
    .bind(origin.workflow)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Notification>, StoreError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!("{SELECT} WHERE n.id = $1"))).bind(id).fetch_optional(&db.pool).await?)
}

/// Pending notifications, oldest first.
pub async fn pending(db: &Db, limit: i64) -> Result<Vec<Notification>, StoreError> {
    // Only constant fragments are spliced in; every value is bound.
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "{SELECT} WHERE {} ORDER BY n.id LIMIT $1",
        DeliveryStatus::Pending.condition()
    )))
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

pub async fn mark_delivered(db: &Db, ids: &[i64]) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE notifications SET delivered_at = now()
         WHERE id = ANY($1) AND delivered_at IS NULL AND undeliverable_at IS NULL",
    )
    .bind(ids)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Records delivery of a pending notification as Telegram message `message_id`; returns it
/// as it is now (`None`: no such id). A message with the buttons of an approval that has
/// ended meanwhile gets its edit at once.
pub async fn delivered(db: &Db, id: i64, message_id: Option<i64>) -> Result<Option<Notification>, StoreError> {
    let mut tx = db.pool.begin().await?;
    let approval: Option<Option<i64>> = sqlx::query_scalar("SELECT approval_id FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let approval = approval.flatten();
    if let Some(a) = approval {
        // Taken before the update, like `approvals::close` takes it: whichever commits
        // second sees the other's write (see there).
        sqlx::query("SELECT 1 FROM approvals WHERE id = $1 FOR UPDATE").bind(a).execute(&mut *tx).await?;
    }
    sqlx::query(
        "UPDATE notifications SET delivered_at = now(), message_id = $2
         WHERE id = $1 AND delivered_at IS NULL AND undeliverable_at IS NULL",
    )
    .bind(id)
    .bind(message_id)
    .execute(&mut *tx)
    .await?;
    if let Some(a) = approval {
        crate::approvals::edit_delivered(&mut tx, &[a], Some(id)).await?;
    }
    tx.commit().await?;
    get(db, id).await
}

/// Gives up on a pending notification with `reason`; returns it as it is now.
pub async fn undeliverable(db: &Db, id: i64, reason: &str) -> Result<Option<Notification>, StoreError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(StoreError::validation("reason", "must not be empty"));
    }
    let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
    sqlx::query(
        "UPDATE notifications SET undeliverable_at = now(), undeliverable_reason = $2
         WHERE id = $1 AND delivered_at IS NULL AND undeliverable_at IS NULL",
    )
    .bind(id)
    .bind(reason)
    .execute(&db.pool)
    .await?;
    get(db, id).await
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub user_id: Option<i64>,
    pub status: Option<DeliveryStatus>,
    pub limit: i64,
    pub cursor: Option<String>,
}

const LIST_SORT: &str = "-id";

/// Newest first, keyset-paginated; returns the page and the cursor of the next one.
pub async fn list(db: &Db, q: &ListQuery) -> Result<(Vec<Notification>, Option<String>), StoreError> {
    let before = match &q.cursor {
        Some(text) => {
            let c = Cursor::decode(text)?;
            if c.sort != LIST_SORT {
                return Err(StoreError::InvalidQuery("cursor is not one this API handed out".into()));
            }
            Some(c.id)
        }
        None => None,
    };
    let status = q.status.map_or("TRUE", DeliveryStatus::condition);
    let sql = format!(
        "{SELECT} WHERE ({status}) AND ($1::bigint IS NULL OR n.user_id = $1) AND ($2::bigint IS NULL OR n.id < $2)
         ORDER BY n.id DESC LIMIT $3"
    );
    let mut items: Vec<Notification> =
        sqlx::query_as(AssertSqlSafe(sql)).bind(q.user_id).bind(before).bind(q.limit + 1).fetch_all(&db.pool).await?;
    let next = if items.len() as i64 > q.limit {
        items.truncate(q.limit.max(0) as usize);
        items.last().map(|n| Cursor { sort: LIST_SORT.into(), key: n.id.to_string(), id: n.id }.encode())
    } else {
        None
    };
    Ok((items, next))
}

/// A listener on [`CHANNEL`]: wakes when notifications were added. It holds one connection
/// of the pool while it lives.
pub async fn listener(db: &Db) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(&db.pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// What a press of a message's button is to do, once [`claim_press`] took the message's
/// one press for it.
#[derive(Debug, Clone)]
pub struct Press {
    pub button: Button,
    pub workflow: Option<String>,
}

/// Takes the one press of notification `id` for button `index`, pressed by `user_id`. Only
/// the person the message went to may press; a message already pressed says what that press
/// did, as a conflict (in English: the bot reads the outcome as data from the notification).
pub async fn claim_press(db: &Db, id: i64, index: usize, user_id: i64) -> Result<Press, StoreError> {
    let mut tx = db.pool.begin().await?;
    #[derive(sqlx::FromRow)]
    struct Row {
        user_id: i64,
        buttons: sqlx::types::Json<Vec<Button>>,
        workflow: Option<String>,
        pressed_at: Option<DateTime<Utc>>,
        pressed: Option<String>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT user_id, buttons, workflow, pressed_at, pressed FROM notifications WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(Row { user_id: owner, buttons, workflow, pressed_at, pressed }) = row else {
        return Err(StoreError::Missing(format!("message {id} does not exist")));
    };
    // Someone else's message reads as missing: its buttons are not theirs to learn about.
    if owner != user_id {
        return Err(StoreError::Missing(format!("message {id} does not exist")));
    }
    if pressed_at.is_some() {
        return Err(StoreError::Conflict(pressed.unwrap_or_else(|| ALREADY_ANSWERED.into())));
    }
    let Some(button) = buttons.0.into_iter().nth(index) else {
        return Err(StoreError::Missing(format!("message {id} has no button {index}")));
    };
    sqlx::query("UPDATE notifications SET pressed_at = now() WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Press { button, workflow })
}

/// A repeated press while the first is still being carried out (its outcome not yet
/// recorded), in English; the bot words it itself.
pub const ALREADY_ANSWERED: &str = "This was already answered.";

/// What the press did, as the message reads from now on: in English and as data.
pub async fn record_press(db: &Db, id: i64, outcome: &PressOutcome) -> Result<(), StoreError> {
    sqlx::query("UPDATE notifications SET pressed = $2, press_outcome = $3 WHERE id = $1")
        .bind(id)
        .bind(outcome.english())
        .bind(sqlx::types::Json(outcome))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Gives the press back when its action failed, so the person can try again.
pub async fn release_press(db: &Db, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE notifications SET pressed_at = NULL, pressed = NULL, press_outcome = NULL WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}
