//! CRM users: who owns records, who acts, and with which role.

use crm_concepts::records::{Actor, Id, Page, PageRequest, RecordKind};
use crm_concepts::user::{MAX_REMIND_BEFORE_MINUTES, NewUser, User, UserSettings};

use crate::Db;
use crate::error::StoreError;
use crate::table::{self, CREATED_AT, ID, SortKey, Table};
use crm_concepts::fields;

pub(crate) const TABLE: Table = Table {
    name: "users",
    kind: RecordKind::User,
    soft_delete: false,
    has_updated_at: false,
    sorts: &[CREATED_AT, ID, SortKey { name: "name", expr: "t.name", sql_type: "text" }],
    default_sort: "id",
};

pub async fn create(db: &Db, actor: &Actor, mut new: NewUser) -> Result<User, StoreError> {
    fields::text("name", &new.name, 200)?;
    fields::email("email", new.email.as_deref())?;
    if let Some(zone) = &new.time_zone {
        new.time_zone = Some(check_zone(zone)?);
    }
    let mut tx = db.pool.begin().await?;
    let after = TABLE.create_audited(&mut tx, actor, &table::to_fields(&new)?).await?;
    tx.commit().await?;
    table::to_record(after)
}

pub async fn get(db: &Db, id: Id) -> Result<User, StoreError> {
    get_in(&mut *db.pool.acquire().await?, id).await
}

pub async fn get_in(conn: &mut sqlx::PgConnection, id: Id) -> Result<User, StoreError> {
    table::to_record(TABLE.get(conn, id).await?)
}

/// The language settings of these users (those without one are left out): what the bot
/// writes its own words in when it answers them unasked, as with a run's completion.
pub async fn languages(
    db: &Db,
    ids: &[Id],
) -> Result<std::collections::HashMap<Id, crm_concepts::language::Language>, StoreError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(Id, String)> =
        sqlx::query_as("SELECT id, language FROM users WHERE id = ANY($1) AND language IS NOT NULL")
            .bind(ids)
            .fetch_all(&db.pool)
            .await?;
    // A code the engine no longer speaks reads as no setting.
    Ok(rows.into_iter().filter_map(|(id, code)| Some((id, code.parse().ok()?))).collect())
}

/// The CRM user a Telegram account is linked to, if any.
pub async fn by_telegram(db: &Db, telegram_user_id: i64) -> Result<Option<User>, StoreError> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT to_jsonb(t.*) FROM users t WHERE t.telegram_user_id = $1 AND t.disabled_at IS NULL")
            .bind(telegram_user_id)
            .fetch_optional(&db.pool)
            .await?;
    row.map(|r| table::to_record(r.0)).transpose()
}

pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>, StoreError> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT to_jsonb(t.*) FROM users t WHERE lower(t.email) = lower($1)")
            .bind(email)
            .fetch_optional(&db.pool)
            .await?;
    row.map(|r| table::to_record(r.0)).transpose()
}

/// Links (or with `None` unlinks) a Telegram account; one account links to one user.
pub async fn link_telegram(
    db: &Db,
    actor: &Actor,
    user_id: Id,
    telegram_user_id: Option<i64>,
) -> Result<User, StoreError> {
    let mut tx = db.pool.begin().await?;
    let before = TABLE.lock(&mut tx, user_id).await?;
    let mut fields = serde_json::Map::new();
    fields.insert("telegram_user_id".into(), serde_json::json!(telegram_user_id));
    let after = TABLE.update_audited(&mut tx, actor, &before, &fields, "updated").await?;
    finish(tx, before, after).await
}

pub async fn list(db: &Db, page: &PageRequest) -> Result<Page<User>, StoreError> {
    let mut conn = db.pool.acquire().await?;
    table::to_records(TABLE.list(&mut conn, page, |_| {}).await?)
}

/// Gives a user another role; their tokens and web sessions carry it from the next request.
pub async fn set_role(db: &Db, actor: &Actor, user_id: Id, role: crm_concepts::user::Role) -> Result<User, StoreError> {
    let mut tx = db.pool.begin().await?;
    let before = TABLE.lock(&mut tx, user_id).await?;
    let mut fields = serde_json::Map::new();
    fields.insert("role".into(), serde_json::json!(role));
    let after = TABLE.update_audited(&mut tx, actor, &before, &fields, "updated").await?;
    finish(tx, before, after).await
}

fn check_zone(name: &str) -> Result<String, StoreError> {
    crm_concepts::local_time::zone(name)
        .map(|z| z.name().to_string())
        .map_err(|e| StoreError::from(fields::FieldError::new("time_zone", e.to_string())))
}

/// Changes a person's own settings (time zone, reminder lead, language); what `settings` leaves out
/// stays. Zone names are stored as the zone database spells them.
pub async fn set_settings(db: &Db, actor: &Actor, user_id: Id, settings: &UserSettings) -> Result<User, StoreError> {
    let mut changes = serde_json::Map::new();
    if let Some(zone) = &settings.time_zone {
        changes.insert("time_zone".into(), serde_json::json!(check_zone(zone)?));
    }
    if let Some(minutes) = settings.remind_before_minutes {
        if !(0..=MAX_REMIND_BEFORE_MINUTES).contains(&minutes) {
            return Err(fields::FieldError::new(
                "remind_before_minutes",
                format!("must be 0 to {MAX_REMIND_BEFORE_MINUTES} minutes (a week), not {minutes}"),
            )
            .into());
        }
        changes.insert("remind_before_minutes".into(), serde_json::json!(minutes));
    }
    if let Some(language) = settings.language {
        // `null` clears it: the bot follows the person's Telegram app again.
        changes.insert("language".into(), serde_json::json!(language));
    }
    let mut tx = db.pool.begin().await?;
    let before = TABLE.lock(&mut tx, user_id).await?;
    if changes.is_empty() {
        return table::to_record(before);
    }
    let after = TABLE.update_audited(&mut tx, actor, &before, &changes, "updated").await?;
    finish(tx, before, after).await
}

/// Commits a change to a user, which the engines' caches of verified tokens must not outlive.
async fn finish(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    before: serde_json::Value,
    after: Option<serde_json::Value>,
) -> Result<User, StoreError> {
    let user = table::finish_update(tx, before, after).await;
    crate::credential_changes::changed();
    user
}

/// The zone users get when they are created without one (`CRM_TIME_ZONE`); the engine
/// writes it at start. Users made earlier keep theirs.
pub async fn set_default_time_zone(db: &Db, zone: &str) -> Result<(), StoreError> {
    let zone = check_zone(zone)?;
    sqlx::query(
        "INSERT INTO installation_settings (key, value) VALUES ('default_time_zone', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
         WHERE installation_settings.value IS DISTINCT FROM EXCLUDED.value",
    )
    .bind(zone)
    .execute(&db.pool)
    .await?;
    Ok(())
}
