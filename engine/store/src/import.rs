//! CSV import, set-based: the file is read in batches of [`BATCH_ROWS`] rows and each batch
//! is one transaction (all or nothing), written with a handful of statements rather than a
//! few per row:
//!
//! 1. every row becomes the kind's `New…` input (or, for a duplicate with `--on-duplicate
//!    update`, its patch) and passes the same checks as the API; a row that breaks a rule is
//!    reported with its line;
//! 2. duplicates (contacts by email, companies by domain, else by name) are looked up for
//!    the whole batch in one query; a row that repeats an earlier row of the same batch
//!    waits for a later round, so it meets that row's record as a row-by-row import would;
//! 3. the records a batch refers to (companies, owners, …) are checked in one query per
//!    referenced table;
//! 4. new records go in with one `INSERT … SELECT FROM jsonb_populate_recordset` that also
//!    writes their activity entries and outbox events (so record-event triggers see every
//!    row, and the search words are collected by the tables' statement triggers); updates
//!    lock their rows, write, and log set-based too.
//!
//! A write that the database refuses (a constraint no check here knows of, a record deleted
//! meanwhile) is retried in halves under savepoints until the refused rows are found and
//! reported; the rest of the batch stays. Anything else (the database going away) ends the
//! import: earlier batches stay written, the failed one leaves nothing. A dry run does all
//! of it in one transaction and rolls it back at the end.

use std::collections::{HashMap, HashSet};

use crm_concepts::custom_fields::FieldDefinition;
use crm_concepts::fields::Checked;
use crm_concepts::import::{ColumnType, ImportKind, ImportOptions, ImportReport, MappedColumn, OnDuplicate, RowNote};
use crm_concepts::money::{self, Locale};
use crm_concepts::records::{Actor, CompanyPatch, ContactPatch, Id, NewCompany, NewContact, NewDeal, NewTask};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::table::{self, Table};
use crate::{Db, companies, contacts, custom_fields, deals, tasks, users};

/// Rows per transaction: large enough that a statement's fixed cost is spread thin, small
/// enough that a failed batch loses little and a transaction holds few locks.
pub const BATCH_ROWS: usize = 5_000;

/// A problem with the file as a whole, or an import that had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// nothing was written
    #[error("{0}")]
    File(String),
    /// nothing was written
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The batches before `line` were written (`done` says what they did); the batch that
    /// failed and everything after it were not.
    #[error("the import stopped at line {line}: {source}")]
    Interrupted { line: u64, done: Box<ImportReport>, source: StoreError },
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> ImportError {
        ImportError::Store(e.into())
    }
}

/// One data row of the file, as the fields of the kind's input.
struct Row {
    line: u64,
    fields: Map<String, Value>,
}

/// Imports `csv` (UTF-8, a header row first) as records of `kind`, attributed to `actor`.
/// `progress` is told how many rows are done after each batch.
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
    let defined = custom_fields::list(db, Some(kind.record_kind())).await?;
    let plan = Plan::new(kind, &headers, options, defined)?;
    let mut report = ImportReport::new(kind, options.dry_run);
    report.ignored_columns = plan.ignored.clone();
    report.columns = plan
        .columns
        .iter()
        .map(|(i, c)| MappedColumn { column: headers.get(*i).unwrap_or_default().to_string(), field: c.name.into() })
        .chain(plan.custom.iter().map(|(i, d)| MappedColumn {
            column: headers.get(*i).unwrap_or_default().to_string(),
            field: custom_fields::column(&d.key),
        }))
        .collect();

    let mut writer = BatchWriter { actor, kind, on_duplicate: options.on_duplicate, stages: HashMap::new() };
    let mut tx = db.pool.begin().await?;
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH_ROWS);
    let mut committed = false;
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        let more = match reader.read_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                report.rows += 1;
                report.rejected.push(RowNote { line, reason: csv_problem(&e) });
                continue;
            }
        };
        if more {
            let line = record.position().map_or(line, csv::Position::line);
            if record.iter().all(str::is_empty) {
                continue;
            }
            report.rows += 1;
            if record.len() != headers.len() {
                report.rejected.push(RowNote {
                    line,
                    reason: format!("has {} cells where the header has {}", record.len(), headers.len()),
                });
                continue;
            }
            match plan.fields(&record, options) {
                Ok(fields) => batch.push(Row { line, fields }),
                Err(reason) => report.rejected.push(RowNote { line, reason }),
            }
        }
        if batch.len() >= BATCH_ROWS || (!more && !batch.is_empty()) {
            let first_line = batch.first().map_or(line, |r| r.line);
            let snapshot = report.clone();
            if let Err(source) = writer.write(&mut tx, std::mem::take(&mut batch), &mut report).await {
                return Err(stopped(committed, first_line, snapshot, source));
            }
            if !options.dry_run {
                tx = match commit_and_begin(db, tx).await {
                    Ok(next) => next,
                    Err(source) => return Err(stopped(committed, first_line, snapshot, source)),
                };
                committed = true;
            }
            progress(report.rows);
        }
        if !more {
            break;
        }
    }
    progress(report.rows);
    // The open transaction holds the dry run's writes, or nothing.
    tx.rollback().await?;
    report.rejected.sort_by_key(|n| n.line);
    report.skipped.sort_by_key(|n| n.line);
    Ok(report)
}

async fn commit_and_begin<'c>(
    db: &'c Db,
    tx: sqlx::Transaction<'c, sqlx::Postgres>,
) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, StoreError> {
    tx.commit().await?;
    Ok(db.pool.begin().await?)
}

/// The error of an import that stopped at the batch starting on `line`.
fn stopped(committed: bool, line: u64, report: ImportReport, source: StoreError) -> ImportError {
    if committed {
        ImportError::Interrupted { line, done: Box::new(report), source }
    } else {
        ImportError::Store(source)
    }
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
    /// (column index, custom field): a `custom.KEY` column of a defined field, as an
    /// export writes it; its cell (when not empty) wins over the key in the `custom` column
    custom: Vec<(usize, FieldDefinition)>,
}

/// `E-Mail ` → `e_mail`: how a header is matched to a field name.
fn normalize(header: &str) -> String {
    header.trim().to_lowercase().chars().map(|c| if c == ' ' || c == '-' { '_' } else { c }).collect()
}

impl Plan {
    fn new(
        kind: ImportKind,
        headers: &csv::StringRecord,
        options: &ImportOptions,
        defined: Vec<FieldDefinition>,
    ) -> Result<Plan, ImportError> {
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
        let mut custom = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            let key = header.trim().strip_prefix("custom.");
            if let Some(d) = defined.iter().find(|d| Some(d.key.as_str()) == key) {
                custom.push((i, d.clone()));
                continue;
            }
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
        Ok(Plan { kind, columns, ignored, custom })
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
        for (i, definition) in &self.custom {
            let text = record.get(*i).unwrap_or("");
            if text.is_empty() {
                continue;
            }
            let currency = if options.default_currency.is_empty() { "USD" } else { &options.default_currency };
            let value = definition.parse_text(text, Locale::DecimalPoint, currency).map_err(|e| e.to_string())?;
            match fields.entry("custom").or_insert_with(|| json!({})) {
                Value::Object(custom) => {
                    custom.insert(definition.key.clone(), value);
                }
                _ => return Err("custom: is not a JSON object".into()),
            }
        }
        if self.kind == ImportKind::Deals && !fields.contains_key("amount_minor") {
            fields.insert("amount_minor".into(), json!(0));
        }
        Ok(fields)
    }
}

/// What makes two rows the same record: a contact's email, a company's domain, else its
/// name. Kept as typed (the database compares with `lower()`); compared here lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DupKey {
    Email(String),
    Domain(String),
    Name(String),
}

impl DupKey {
    fn of(kind: ImportKind, fields: &Map<String, Value>) -> Option<DupKey> {
        let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
        match kind {
            ImportKind::Contacts => text("email").map(DupKey::Email),
            ImportKind::Companies => text("domain").map(DupKey::Domain).or_else(|| text("name").map(DupKey::Name)),
            ImportKind::Deals | ImportKind::Tasks => None,
        }
    }

    fn folded(&self) -> DupKey {
        match self {
            DupKey::Email(s) => DupKey::Email(s.to_lowercase()),
            DupKey::Domain(s) => DupKey::Domain(s.to_lowercase()),
            DupKey::Name(s) => DupKey::Name(s.to_lowercase()),
        }
    }

    fn why(&self) -> String {
        match self {
            DupKey::Email(s) => format!("duplicate email {s}"),
            DupKey::Domain(s) => format!("duplicate domain {s}"),
            DupKey::Name(s) => format!("duplicate name {s}"),
        }
    }
}

/// A reference a record of the kind may hold, checked like `table::ensure_exists` does.
struct Reference {
    field: &'static str,
    table: &'static Table,
}

const fn r(field: &'static str, table: &'static Table) -> Reference {
    Reference { field, table }
}

/// In the order the kind's `create_in` checks them, so a row breaking two rules gets the
/// same reason either way.
fn references(kind: ImportKind) -> &'static [Reference] {
    const CONTACT: &[Reference] = &[r("company_id", &companies::TABLE), r("owner_id", &users::TABLE)];
    const COMPANY: &[Reference] = &[r("owner_id", &users::TABLE)];
    const DEAL: &[Reference] =
        &[r("contact_id", &contacts::TABLE), r("company_id", &companies::TABLE), r("owner_id", &users::TABLE)];
    const TASK: &[Reference] = &[
        r("assignee_id", &users::TABLE),
        r("contact_id", &contacts::TABLE),
        r("company_id", &companies::TABLE),
        r("deal_id", &deals::TABLE),
    ];
    match kind {
        ImportKind::Contacts => CONTACT,
        ImportKind::Companies => COMPANY,
        ImportKind::Deals => DEAL,
        ImportKind::Tasks => TASK,
    }
}

fn table_of(kind: ImportKind) -> &'static Table {
    match kind {
        ImportKind::Contacts => &contacts::TABLE,
        ImportKind::Companies => &companies::TABLE,
        ImportKind::Deals => &deals::TABLE,
        ImportKind::Tasks => &tasks::TABLE,
    }
}

fn input<T: DeserializeOwned>(fields: &Map<String, Value>) -> Result<T, StoreError> {
    serde_json::from_value(Value::Object(fields.clone())).map_err(|e| StoreError::validation("row", e.to_string()))
}

/// Writes batches; remembers the stages deals start in across batches.
struct BatchWriter<'a> {
    actor: &'a Actor,
    kind: ImportKind,
    on_duplicate: OnDuplicate,
    stages: deals::StageCache,
}

impl BatchWriter<'_> {
    async fn write(
        &mut self,
        conn: &mut PgConnection,
        rows: Vec<Row>,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        let mut pending = rows;
        while !pending.is_empty() {
            let (round, mut later) = self.split_round(pending);
            let existing = existing(conn, self.kind, &round).await?;
            let mut creates = Vec::new();
            let mut updates: Vec<(Row, Id)> = Vec::new();
            let mut claimed = HashSet::new();
            for (row, key) in round {
                match key.as_ref().and_then(|k| existing.get(k).map(|id| (k, *id))) {
                    Some((key, id)) if self.on_duplicate == OnDuplicate::Skip => report.skipped.push(RowNote {
                        line: row.line,
                        reason: format!("{}: {} {id} exists", key.why(), kind_one(self.kind)),
                    }),
                    // Two rows naming one record (by domain and by name) update it in turn.
                    Some((_, id)) if !claimed.insert(id) => later.push(row),
                    Some((_, id)) => updates.push((row, id)),
                    None => creates.push(row),
                }
            }
            self.create(conn, creates, report).await?;
            self.update(conn, updates, report).await?;
            later.sort_by_key(|r| r.line);
            pending = later;
        }
        Ok(())
    }

    /// The rows that can be written together (no two of them the same record) and the
    /// rows that must wait until those are written, in file order.
    fn split_round(&self, rows: Vec<Row>) -> (Vec<(Row, Option<DupKey>)>, Vec<Row>) {
        let mut round = Vec::with_capacity(rows.len());
        let mut later = Vec::new();
        let mut seen: HashSet<DupKey> = HashSet::new();
        for row in rows {
            let key = DupKey::of(self.kind, &row.fields);
            let Some(k) = &key else {
                round.push((row, None));
                continue;
            };
            // A company found by name clashes with any earlier row of that name, whatever
            // its domain; one found by domain only with that domain.
            let name = (self.kind == ImportKind::Companies)
                .then(|| row.fields.get("name").and_then(Value::as_str).map(|n| DupKey::Name(n.to_lowercase())))
                .flatten();
            if seen.contains(&k.folded()) {
                later.push(row);
                continue;
            }
            seen.insert(k.folded());
            if let Some(n) = name {
                seen.insert(n);
            }
            round.push((row, key));
        }
        (round, later)
    }

    async fn create(
        &mut self,
        conn: &mut PgConnection,
        rows: Vec<Row>,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        let mut ready = Vec::with_capacity(rows.len());
        for row in rows {
            match self.new_fields(conn, &row.fields).await {
                Ok(fields) => ready.push((row.line, fields)),
                Err(StoreError::Db(e)) => return Err(StoreError::Db(e)),
                Err(e) => report.rejected.push(RowNote { line: row.line, reason: e.to_string() }),
            }
        }
        let ready = check_references(conn, self.kind, ready, report).await?;
        report.created += in_halves(conn, self.actor, table_of(self.kind), Write::Create, ready, report).await?;
        Ok(())
    }

    /// The columns of a new record from a row: the kind's input, checked as the API checks it.
    async fn new_fields(
        &mut self,
        conn: &mut PgConnection,
        fields: &Map<String, Value>,
    ) -> Result<Map<String, Value>, StoreError> {
        match self.kind {
            ImportKind::Contacts => {
                let new = input::<NewContact>(fields)?;
                new.check()?;
                table::to_fields(&new)
            }
            ImportKind::Companies => {
                let new = input::<NewCompany>(fields)?;
                new.check()?;
                table::to_fields(&new)
            }
            ImportKind::Deals => deals::creation_fields(conn, &input::<NewDeal>(fields)?, &mut self.stages).await,
            ImportKind::Tasks => {
                let new = input::<NewTask>(fields)?;
                new.check()?;
                table::to_fields(&new)
            }
        }
    }

    async fn update(
        &mut self,
        conn: &mut PgConnection,
        rows: Vec<(Row, Id)>,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        let mut ready = Vec::with_capacity(rows.len());
        for (row, id) in rows {
            let patch = match self.kind {
                ImportKind::Contacts => input::<ContactPatch>(&row.fields).and_then(|p| {
                    p.check()?;
                    table::to_fields(&p)
                }),
                ImportKind::Companies => input::<CompanyPatch>(&row.fields).and_then(|p| {
                    p.check()?;
                    table::to_fields(&p)
                }),
                // Deals and tasks have no duplicates to update.
                ImportKind::Deals | ImportKind::Tasks => {
                    Err(StoreError::InvalidQuery(format!("{} are never updated by an import", self.kind)))
                }
            };
            match patch {
                Ok(mut fields) => {
                    fields.insert("id".into(), json!(id));
                    ready.push((row.line, fields));
                }
                Err(e) => report.rejected.push(RowNote { line: row.line, reason: e.to_string() }),
            }
        }
        let ready = check_references(conn, self.kind, ready, report).await?;
        report.updated += in_halves(conn, self.actor, table_of(self.kind), Write::Update, ready, report).await?;
        Ok(())
    }
}

/// Drops (and reports) the rows that refer to a record that is not there, with one query
/// per referenced table.
async fn check_references(
    conn: &mut PgConnection,
    kind: ImportKind,
    rows: Vec<(u64, Map<String, Value>)>,
    report: &mut ImportReport,
) -> Result<Vec<(u64, Map<String, Value>)>, StoreError> {
    let mut live: Vec<HashSet<Id>> = Vec::new();
    for reference in references(kind) {
        let ids: Vec<Id> = rows.iter().filter_map(|(_, f)| f.get(reference.field).and_then(Value::as_i64)).collect();
        live.push(if ids.is_empty() { HashSet::new() } else { reference.table.live_ids(conn, ids).await? });
    }
    let mut kept = Vec::with_capacity(rows.len());
    'rows: for (line, fields) in rows {
        for (reference, live) in references(kind).iter().zip(&live) {
            if let Some(id) = fields.get(reference.field).and_then(Value::as_i64)
                && !live.contains(&id)
            {
                let e =
                    StoreError::validation(reference.field, format!("{} {id} does not exist", reference.table.kind));
                report.rejected.push(RowNote { line, reason: e.to_string() });
                continue 'rows;
            }
        }
        kept.push((line, fields));
    }
    Ok(kept)
}

/// Rows ready to write: (line, columns).
type Part = Vec<(u64, Map<String, Value>)>;

#[derive(Clone, Copy)]
enum Write {
    Create,
    Update,
}

/// Writes `rows`; when the database refuses a part, rolls that part back and tries its
/// halves, down to the single rows it then reports. Returns how many were written.
async fn in_halves(
    conn: &mut PgConnection,
    actor: &Actor,
    table: &Table,
    write: Write,
    rows: Part,
    report: &mut ImportReport,
) -> Result<u64, StoreError> {
    let mut written = 0;
    let mut stack = vec![rows];
    while let Some(part) = stack.pop() {
        if part.is_empty() {
            continue;
        }
        sqlx::query("SAVEPOINT import_part").execute(&mut *conn).await?;
        let fields: Vec<&Map<String, Value>> = part.iter().map(|(_, f)| f).collect();
        let result = match write {
            Write::Create => table.create_audited_many(conn, actor, &fields).await,
            Write::Update => table.update_audited_many(conn, actor, &fields).await,
        };
        match result {
            Ok(n) => {
                sqlx::query("RELEASE SAVEPOINT import_part").execute(&mut *conn).await?;
                written += n;
            }
            Err(StoreError::Db(e)) => return Err(StoreError::Db(e)),
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT import_part").execute(&mut *conn).await?;
                sqlx::query("RELEASE SAVEPOINT import_part").execute(&mut *conn).await?;
                match <[_; 1]>::try_from(part) {
                    Ok([(line, _)]) => report.rejected.push(RowNote { line, reason: e.to_string() }),
                    Err(mut first) => {
                        let second = first.split_off(first.len() / 2);
                        stack.push(second);
                        stack.push(first);
                    }
                }
            }
        }
    }
    Ok(written)
}

fn kind_one(kind: ImportKind) -> &'static str {
    match kind {
        ImportKind::Contacts => "contact",
        ImportKind::Companies => "company",
        ImportKind::Deals => "deal",
        ImportKind::Tasks => "task",
    }
}

/// The live records the round's rows duplicate (the oldest one where several match), in
/// one query: contacts by email, companies by domain or, without a domain, by name. Rows
/// written by earlier rounds and batches count, so a file that lists someone twice
/// imports them once.
async fn existing(
    conn: &mut PgConnection,
    kind: ImportKind,
    round: &[(Row, Option<DupKey>)],
) -> Result<HashMap<DupKey, Id>, StoreError> {
    let mut by: HashMap<&'static str, Vec<String>> = HashMap::new();
    for (_, key) in round {
        match key {
            Some(DupKey::Email(s)) => by.entry("email").or_default().push(s.clone()),
            Some(DupKey::Domain(s)) => by.entry("domain").or_default().push(s.clone()),
            Some(DupKey::Name(s)) => by.entry("name").or_default().push(s.clone()),
            None => {}
        }
    }
    let table = table_of(kind).name;
    let mut found = HashMap::new();
    for (column, keys) in by {
        let sql = format!(
            "SELECT k.key, m.id FROM unnest($1::text[]) AS k (key)
             CROSS JOIN LATERAL (
                 SELECT t.id FROM {table} t
                 WHERE lower(t.{column}) = lower(k.key) AND t.deleted_at IS NULL ORDER BY t.id LIMIT 1
             ) m"
        );
        let rows: Vec<(String, Id)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(keys).fetch_all(&mut *conn).await?;
        for (key, id) in rows {
            let key = match column {
                "email" => DupKey::Email(key),
                "domain" => DupKey::Domain(key),
                _ => DupKey::Name(key),
            };
            found.insert(key, id);
        }
    }
    Ok(found)
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
