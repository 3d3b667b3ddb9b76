//! What can go wrong in a store call, in terms a caller can act on: the API maps each
//! variant to one HTTP status, a workflow step to a permanent or retryable error.

use crm_concepts::records::{Id, RecordKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id} not found")]
    NotFound { kind: RecordKind, id: Id },
    /// The input breaks a rule of the record; `field` names the offending input field.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The input clashes with existing data (a duplicate email, a duplicate name).
    #[error("{0}")]
    Conflict(String),
    /// Something named is not there: a secret, the user a message is for.
    #[error("{0}")]
    Missing(String),
    /// A malformed list request: unknown sort field, a cursor from elsewhere.
    #[error("{0}")]
    InvalidQuery(String),
    #[error("database error: {0}")]
    Db(sqlx::Error),
}

impl StoreError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError::Validation { field: field.into(), message: message.into() }
    }

    pub fn not_found(kind: RecordKind, id: Id) -> StoreError {
        StoreError::NotFound { kind, id }
    }

    /// Whether retrying the same call later may succeed (lost connection, pool timeout,
    /// serialization failure), as opposed to an answer about the input.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => match e {
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
                sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("40001" | "40P01")),
                _ => false,
            },
            _ => false,
        }
    }
}

impl From<crm_concepts::fields::FieldError> for StoreError {
    fn from(e: crm_concepts::fields::FieldError) -> StoreError {
        StoreError::Validation { field: e.field, message: e.message }
    }
}

/// Constraint violations become answers about the input; the constraint names come from
/// migrations/0001_crm.sql (Postgres' default `<table>_<column>_<kind>` naming).
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        let sqlx::Error::Database(db) = &e else {
            return StoreError::Db(e);
        };
        let constraint = db.constraint().unwrap_or_default().to_string();
        let table = db.table().unwrap_or_default().to_string();
        match db.code().as_deref() {
            Some("23505") => StoreError::Conflict(conflict_message(&constraint)),
            Some("23503") => {
                let field = column_of(&constraint, &table, "_fkey");
                let message = if constraint == "deals_stage_id_pipeline_id_fkey" {
                    "the stage does not belong to the deal's pipeline".to_string()
                } else {
                    format!("refers to a record that does not exist ({})", db.message())
                };
                let field =
                    if constraint == "deals_stage_id_pipeline_id_fkey" { "stage_id".to_string() } else { field };
                StoreError::Validation { field, message }
            }
            Some("23514") => {
                let (field, message) = check_message(&constraint, &table);
                StoreError::Validation { field, message }
            }
            Some("23502") => {
                let field = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .and_then(|p| p.column())
                    .unwrap_or("record")
                    .to_string();
                StoreError::Validation { field, message: "is required".into() }
            }
            // data exceptions: a value Postgres cannot store (out of range, bad encoding)
            Some(code) if code.starts_with("22") => {
                StoreError::Validation { field: "record".into(), message: db.message().to_string() }
            }
            _ => StoreError::Db(e),
        }
    }
}

fn column_of(constraint: &str, table: &str, suffix: &str) -> String {
    let rest = constraint.strip_prefix(table).and_then(|r| r.strip_prefix('_')).unwrap_or(constraint);
    rest.strip_suffix(suffix).unwrap_or(rest).to_string()
}

fn conflict_message(constraint: &str) -> String {
    match constraint {
        "contacts_email_live_key" => "a contact with this email already exists".into(),
        "users_email_key" => "a user with this email already exists".into(),
        "users_telegram_user_id_key" => "this Telegram user is already linked to another CRM user".into(),
        "pipelines_name_key" => "a pipeline with this name already exists".into(),
        "stages_pipeline_id_name_key" => "two stages of a pipeline cannot share a name".into(),
        "custom_fields_kind_key_key" => "this kind of record already has a custom field with this key".into(),
        other => format!("duplicate value ({other})"),
    }
}

fn check_message(constraint: &str, table: &str) -> (String, String) {
    match constraint {
        "tasks_check" => {
            ("contact_id".into(), "a task links to at most one record (contact_id, company_id or deal_id)".into())
        }
        "tasks_check1" => ("done".into(), "done and done_at disagree".into()),
        "notes_check" => (
            "contact_id".into(),
            "a note belongs to exactly one record (contact_id, company_id, deal_id or task_id)".into(),
        ),
        _ => {
            let field = column_of(constraint, table, "_check");
            let message = match field.as_str() {
                "email" => "not a valid email address".to_string(),
                "amount_minor" => "must not be negative".to_string(),
                "currency" => "must be a three-letter ISO 4217 code such as USD".to_string(),
                "name" | "title" | "body" => "must not be blank and not too long".to_string(),
                _ => format!("violates {constraint}"),
            };
            (field, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_column_of_a_constraint() {
        assert_eq!(column_of("contacts_company_id_fkey", "contacts", "_fkey"), "company_id");
        assert_eq!(column_of("deals_amount_minor_check", "deals", "_check"), "amount_minor");
        assert_eq!(check_message("tasks_check", "tasks").0, "contact_id");
        assert_eq!(check_message("tasks_check1", "tasks").0, "done");
    }
}
