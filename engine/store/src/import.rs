//! CSV import: one file, one transaction. Each row becomes the kind's `New…` input (or, for
//! a duplicate with `--on-duplicate update`, its patch) and goes through the same
//! `create_in`/`update_in` as the API, so it is validated, logged in the activity log and
//! announced in the outbox like any other write. A row that breaks a rule is rolled back to
//! its savepoint and reported with its line; anything else that fails (the database going
//! away) rolls back the whole file, so an import is never half-written. A dry run does all
//! of it and rolls back at the end.

use crm_concepts::import::{ColumnType, ImportKind, ImportOptions, ImportReport, OnDuplicate, RowNote};
use crm_concepts::money;
use crm_concepts::records::{
    Actor, CompanyPatch, ContactPatch, DealPatch, Id, NewCompany, NewContact, NewDeal, NewTask, TaskPatch,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sqlx::{Acquire, PgConnection};

use crate::error::StoreError;
use crate::{Db, companies, contacts, deals, tasks};

/// A problem with the file as a whole: nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> ImportError {
        ImportError::Store(e.into())
    }
}

/// Imports `csv` (UTF-8, a header row first) as records of `kind`, attributed to `actor`.
/// `progress` is told how many rows are done, now and then.
pub async fn import(
    db: &Db,
    actor: &Actor,
    kind: ImportKind,
    csv: &[u8],
    options: &ImportOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(csv);
    let headers = reader.headers().map_err(|e| ImportError::File(format!("the header row: {e}")))?.clone();
    let plan = Plan::new(kind, &headers, options)?;
    let mut report = ImportReport::new(kind, options.dry_run);
    report.ignored_columns = plan.ignored.clone();

    let mut tx = db.pool.begin().await?;
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.rows += 1;
                report.rejected.push(RowNote { line, reason: csv_problem(&e) });
                continue;
            }
        }
        let line = record.position().map_or(line, csv::Position::line);
        report.rows += 1;
        if record.iter().all(str::is_empty) {
            report.rows -= 1;
            continue;
        }
        if record.len() != headers.len() {
            report.rejected.push(RowNote {
                line,
                reason: format!("has {} cells where the header has {}", record.len(), headers.len()),
            });
            continue;
        }
        let fields = match plan.fields(&record, options) {
            Ok(f) => f,
            Err(reason) => {
                report.rejected.push(RowNote { line, reason });
                continue;
            }
        };
        let mut savepoint = (&mut tx).begin().await?;
        match write_row(&mut savepoint, actor, kind, fields, options.on_duplicate).await {
            Ok(outcome) => {
                savepoint.commit().await?;
                match outcome {
                    Written::Created => report.created += 1,
                    Written::Updated => report.updated += 1,
                    Written::Skipped(reason) => report.skipped.push(RowNote { line, reason }),
                }
            }
            Err(StoreError::Db(e)) => return Err(StoreError::Db(e).into()),
            Err(e) => {
                savepoint.rollback().await?;
                report.rejected.push(RowNote { line, reason: e.to_string() });
            }
        }
        if report.rows.is_multiple_of(100) {
            progress(report.rows);
        }
    }
    progress(report.rows);
    if options.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

fn csv_problem(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8 text".into(),
        _ => format!("cannot be read as CSV: {e}"),
    }
}

/// Which column of the file fills which field.
struct Plan {
    kind: ImportKind,
    /// (column index, field)
    columns: Vec<(usize, &'static crm_concepts::import::Column)>,
    ignored: Vec<String>,
}

/// `E-Mail ` → `e_mail`: how a header is matched to a field name.
fn normalize(header: &str) -> String {
    header.trim().to_lowercase().chars().map(|c| if c == ' ' || c == '-' { '_' } else { c }).collect()
}

impl Plan {
    fn new(kind: ImportKind, headers: &csv::StringRecord, options: &ImportOptions) -> Result<Plan, ImportError> {
        let fields = kind.columns();
        let names = || fields.iter().map(|c| c.name).collect::<Vec<_>>().join(", ");
        for (column, field) in &options.map {
            if !fields.iter().any(|c| c.name == field) {
                return Err(ImportError::File(format!(
                    "--map {column}={field}: {kind} have no field {field:?}; they have {}",
                    names()
                )));
            }
            if !headers.iter().any(|h| h == column) {
                return Err(ImportError::File(format!("--map {column}={field}: the file has no column {column:?}")));
            }
        }
        let mut columns = Vec::new();
        let mut ignored = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            let target = options.map.get(header).cloned().unwrap_or_else(|| normalize(header));
            match fields.iter().find(|c| c.name == target) {
                Some(c) if columns.iter().any(|(_, d): &(usize, &crm_concepts::import::Column)| d.name == c.name) => {
                    return Err(ImportError::File(format!("two columns fill {}: map one of them elsewhere", c.name)));
                }
                Some(c) => columns.push((i, c)),
                None if kind.read_only_columns().contains(&target.as_str()) => {}
                None => ignored.push(header.to_string()),
            }
        }
        for required in fields.iter().filter(|c| c.required) {
            if !columns.iter().any(|(_, c)| c.name == required.name) {
                return Err(ImportError::File(format!(
                    "no column gives {kind} their {name}: name a column {name:?} or map one with --map COLUMN={name}",
                    name = required.name
                )));
            }
        }
        Ok(Plan { kind, columns, ignored })
    }

    /// The row as the fields of the kind's input; empty cells are left out.
    fn fields(&self, record: &csv::StringRecord, options: &ImportOptions) -> Result<Map<String, Value>, String> {
        let mut fields = Map::new();
        let cell = |name: &str| {
            self.columns.iter().find(|(_, c)| c.name == name).and_then(|(i, _)| record.get(*i)).unwrap_or("")
        };
        for (i, column) in &self.columns {
            let text = record.get(*i).unwrap_or("");
            let name = column.name;
            if text.is_empty() {
                if column.required {
                    return Err(format!("{name}: must not be blank"));
                }
                continue;
            }
            let value = match column.ty {
                ColumnType::Text | ColumnType::Date => json!(text),
                ColumnType::Id => json!(
                    text.parse::<Id>().map_err(|_| format!("{name}: {text:?} is not a record id (a whole number)"))?
                ),
                ColumnType::Tags => {
                    json!(text.split([';', ',']).map(str::trim).filter(|t| !t.is_empty()).collect::<Vec<_>>())
                }
                ColumnType::Json => match serde_json::from_str::<Value>(text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => return Err(format!("{name}: {text:?} is not a JSON object")),
                },
                ColumnType::DateTime => match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                    Ok(d) => json!(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc())),
                    Err(_) => json!(text),
                },
                ColumnType::Money => {
                    let currency = cell("currency");
                    let default = match (currency, options.default_currency.as_str()) {
                        ("", "") => "USD",
                        ("", default) => default,
                        (currency, _) => currency,
                    };
                    let (minor, code) = money::parse(text, default).map_err(|e| format!("{name}: {e}"))?;
                    fields.insert("amount_minor".into(), json!(minor));
                    fields.insert("currency".into(), json!(code));
                    continue;
                }
            };
            if name == "currency" && fields.contains_key("currency") {
                // The amount's own code (`1500 EUR`) wins over the column.
                continue;
            }
            let value = if name == "currency" { json!(text.to_ascii_uppercase()) } else { value };
            fields.insert(name.into(), value);
        }
        if self.kind == ImportKind::Deals && !fields.contains_key("amount_minor") {
            fields.insert("amount_minor".into(), json!(0));
        }
        Ok(fields)
    }
}

enum Written {
    Created,
    Updated,
    Skipped(String),
}

fn input<T: DeserializeOwned>(fields: &Map<String, Value>) -> Result<T, StoreError> {
    serde_json::from_value(Value::Object(fields.clone())).map_err(|e| StoreError::validation("row", e.to_string()))
}

async fn write_row(
    conn: &mut PgConnection,
    actor: &Actor,
    kind: ImportKind,
    fields: Map<String, Value>,
    on_duplicate: OnDuplicate,
) -> Result<Written, StoreError> {
    let existing = duplicate_of(conn, kind, &fields).await?;
    match (existing, on_duplicate) {
        (Some((id, why)), OnDuplicate::Skip) => Ok(Written::Skipped(format!("{why}: {} {id} exists", kind_one(kind)))),
        (Some((id, _)), OnDuplicate::Update) => {
            match kind {
                ImportKind::Contacts => {
                    contacts::update_in(conn, actor, id, input::<ContactPatch>(&fields)?).await?;
                }
                ImportKind::Companies => {
                    companies::update_in(conn, actor, id, input::<CompanyPatch>(&fields)?).await?;
                }
                ImportKind::Deals => {
                    deals::update_in(conn, actor, id, input::<DealPatch>(&fields)?).await?;
                }
                ImportKind::Tasks => {
                    tasks::update_in(conn, actor, id, input::<TaskPatch>(&fields)?).await?;
                }
            }
            Ok(Written::Updated)
        }
        (None, _) => {
            match kind {
                ImportKind::Contacts => {
                    contacts::create_in(conn, actor, input::<NewContact>(&fields)?).await?;
                }
                ImportKind::Companies => {
                    companies::create_in(conn, actor, input::<NewCompany>(&fields)?).await?;
                }
                ImportKind::Deals => {
                    deals::create_in(conn, actor, input::<NewDeal>(&fields)?).await?;
                }
                ImportKind::Tasks => {
                    tasks::create_in(conn, actor, input::<NewTask>(&fields)?).await?;
                }
            }
            Ok(Written::Created)
        }
    }
}

fn kind_one(kind: ImportKind) -> &'static str {
    match kind {
        ImportKind::Contacts => "contact",
        ImportKind::Companies => "company",
        ImportKind::Deals => "deal",
        ImportKind::Tasks => "task",
    }
}

/// The live record this row duplicates: a contact with the same email, a company with the
/// same domain (or, without a domain, the same name). Rows written earlier in the same
/// import count, so a file that lists someone twice imports them once.
async fn duplicate_of(
    conn: &mut PgConnection,
    kind: ImportKind,
    fields: &Map<String, Value>,
) -> Result<Option<(Id, String)>, StoreError> {
    let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
    let (sql, key, why) = match kind {
        ImportKind::Contacts => match text("email") {
            Some(email) => (
                "SELECT id FROM contacts WHERE lower(email) = lower($1) AND deleted_at IS NULL ORDER BY id LIMIT 1",
                email.clone(),
                format!("duplicate email {email}"),
            ),
            None => return Ok(None),
        },
        ImportKind::Companies => match (text("domain"), text("name")) {
            (Some(domain), _) => (
                "SELECT id FROM companies WHERE lower(domain) = lower($1) AND deleted_at IS NULL ORDER BY id LIMIT 1",
                domain.clone(),
                format!("duplicate domain {domain}"),
            ),
            (None, Some(name)) => (
                "SELECT id FROM companies WHERE lower(name) = lower($1) AND deleted_at IS NULL ORDER BY id LIMIT 1",
                name.clone(),
                format!("duplicate name {name}"),
            ),
            (None, None) => return Ok(None),
        },
        ImportKind::Deals | ImportKind::Tasks => return Ok(None),
    };
    let id: Option<Id> = sqlx::query_scalar(sql).bind(key).fetch_optional(&mut *conn).await?;
    Ok(id.map(|id| (id, why)))
}

/// Header normalisation is what lets an export from elsewhere import without a map.
#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn headers_match_fields_loosely() {
        assert_eq!(normalize(" Company-ID "), "company_id");
        assert_eq!(normalize("Due at"), "due_at");
    }
}
