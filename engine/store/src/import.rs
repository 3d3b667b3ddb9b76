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
//! Postgres does the work, on one core per connection, so contacts (where it is safe, see
//! [`two_lanes`]) are written on two connections at once, a batch beside the one before
//! unless they share an email. Batches still commit in file order.
//!
//! A write that the database refuses (a constraint no check here knows of, a record deleted
//! meanwhile) is retried in halves under savepoints until the refused rows are found and
//! reported; the rest of the batch stays. Anything else (the database going away) ends the
//! import: earlier batches stay written, the failed one leaves nothing. A dry run does all
//! of it in one transaction and rolls it back at the end.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use crm_concepts::custom_fields::FieldDefinition;
use crm_concepts::fields::Checked;
use crm_concepts::import::{ColumnType, ImportKind, ImportOptions, ImportReport, MappedColumn, OnDuplicate, RowNote};
use crm_concepts::money::{self, Locale};
use crm_concepts::records::{Actor, CompanyPatch, ContactPatch, Id, NewCompany, NewContact, NewDeal, NewTask};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use tokio::sync::watch;

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
    let batches = Batches {
        reader,
        width: headers.len(),
        plan,
        options,
        record: csv::StringRecord::new(),
        index: 0,
        previous_keys: HashSet::new(),
        done: false,
    };
    let writer = || BatchWriter { actor, kind, on_duplicate: options.on_duplicate, stages: HashMap::new() };
    let mut report = if options.dry_run {
        dry_run(db, batches, writer(), report, progress).await?
    } else {
        let pipeline = Pipeline {
            db,
            batches: Mutex::new(batches),
            turn: watch::channel(Turn { committed: 0, failed: None }).0,
            outcome: Mutex::new(Outcome { report, failure: None }),
            progress,
        };
        let lanes = if two_lanes(kind) && db.pool.options().get_max_connections() >= 2 { 2 } else { 1 };
        futures::future::join_all((0..lanes).map(|_| pipeline.lane(writer()))).await;
        let outcome = pipeline.outcome.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(Failure { index, line, source }) = outcome.failure {
            return Err(if index == 0 {
                ImportError::Store(source)
            } else {
                ImportError::Interrupted { line, done: Box::new(outcome.report), source }
            });
        }
        outcome.report
    };
    progress(report.rows);
    report.rejected.sort_by_key(|n| n.line);
    report.skipped.sort_by_key(|n| n.line);
    Ok(report)
}

/// Whether batches of `kind` are written two at a time. Postgres does an import's work, on
/// one core per connection, so a second connection nearly doubles the rate. It is safe
/// where a batch never waits for a lock the batch after it holds (that one waits to commit
/// until the one before has, so neither would move). Contacts qualify: a batch is written
/// beside the one before only when no email is in both, each batch's search words are
/// committed before it starts ([`collect_words`]), and a contact's write locks no other
/// record against a write. Companies do not: a row found by domain in one batch and a row
/// found by name in the next can update the same company.
fn two_lanes(kind: ImportKind) -> bool {
    kind == ImportKind::Contacts
}

/// A dry run: every batch in one transaction, rolled back at the end.
async fn dry_run(
    db: &Db,
    mut batches: Batches<'_>,
    mut writer: BatchWriter<'_>,
    mut report: ImportReport,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ImportReport, ImportError> {
    let mut tx = db.pool.begin().await?;
    while let Some(batch) = batches.next() {
        absorb(&mut report, batch.read);
        writer.write(&mut tx, batch.rows, &mut report).await?;
        progress(report.rows);
    }
    tx.rollback().await?;
    Ok(report)
}

/// The file, read in batches of [`BATCH_ROWS`] good rows.
struct Batches<'a> {
    reader: csv::Reader<&'a [u8]>,
    /// cells in the header row
    width: usize,
    plan: Plan,
    options: &'a ImportOptions,
    record: csv::StringRecord,
    index: usize,
    /// the folded duplicate keys of the batch before
    previous_keys: HashSet<DupKey>,
    done: bool,
}

/// Rows written in one transaction.
struct Batch {
    /// 0 for the file's first batch
    index: usize,
    /// the line of the batch's first record: where a rerun starts if the batch fails
    first_line: u64,
    rows: Vec<Row>,
    /// the rows read and the ones rejected on reading
    read: ImportReport,
    /// shares a duplicate key with the batch before, so it must find that batch written
    after_previous: bool,
}

impl Batches<'_> {
    fn next(&mut self) -> Option<Batch> {
        if self.done {
            return None;
        }
        let mut read = ImportReport::new(self.plan.kind, self.options.dry_run);
        let mut rows: Vec<Row> = Vec::with_capacity(BATCH_ROWS);
        let mut first_line = None;
        while rows.len() < BATCH_ROWS {
            let line = self.reader.position().line();
            let more = match self.reader.read_record(&mut self.record) {
                Ok(more) => more,
                Err(e) => {
                    first_line.get_or_insert(line);
                    read.rows += 1;
                    read.rejected.push(RowNote { line, reason: csv_problem(&e) });
                    continue;
                }
            };
            if !more {
                self.done = true;
                break;
            }
            let line = self.record.position().map_or(line, csv::Position::line);
            if self.record.iter().all(str::is_empty) {
                continue;
            }
            first_line.get_or_insert(line);
            read.rows += 1;
            if self.record.len() != self.width {
                read.rejected.push(RowNote {
                    line,
                    reason: format!("has {} cells where the header has {}", self.record.len(), self.width),
                });
                continue;
            }
            match self.plan.fields(&self.record, self.options) {
                Ok(fields) => rows.push(Row { line, fields }),
                Err(reason) => read.rejected.push(RowNote { line, reason }),
            }
        }
        let first_line = first_line?;
        let keys: HashSet<DupKey> = rows.iter().flat_map(|r| self.plan.keys(&r.fields)).collect();
        let after_previous = !keys.is_disjoint(&self.previous_keys);
        self.previous_keys = keys;
        self.index += 1;
        Some(Batch { index: self.index - 1, first_line, rows, read, after_previous })
    }
}

/// Adds a batch's counts and notes to the import's report.
fn absorb(report: &mut ImportReport, part: ImportReport) {
    report.rows += part.rows;
    report.created += part.created;
    report.updated += part.updated;
    report.skipped.extend(part.skipped);
    report.rejected.extend(part.rejected);
}

/// How far the batches are. They commit in file order, so an import that stops leaves
/// every batch before the failed one written and none after it.
#[derive(Clone, Copy)]
struct Turn {
    /// batches 0..committed are written
    committed: usize,
    /// the earliest batch that failed
    failed: Option<usize>,
}

struct Failure {
    index: usize,
    line: u64,
    source: StoreError,
}

struct Outcome {
    /// what the batches written so far did
    report: ImportReport,
    failure: Option<Failure>,
}

/// Batches taken in file order by one or two lanes, each lane a connection writing one
/// batch at a time.
struct Pipeline<'a> {
    db: &'a Db,
    batches: Mutex<Batches<'a>>,
    turn: watch::Sender<Turn>,
    outcome: Mutex<Outcome>,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Pipeline<'_> {
    async fn lane(&self, mut writer: BatchWriter<'_>) {
        let mut turn = self.turn.subscribe();
        loop {
            if self.turn.borrow().failed.is_some() {
                return;
            }
            let Some(batch) = self.batches.lock().unwrap_or_else(PoisonError::into_inner).next() else { return };
            let (index, first_line) = (batch.index, batch.first_line);
            if batch.after_previous && !my_turn(&mut turn, index).await {
                return;
            }
            let (tx, part) = match self.write(&mut writer, batch.rows).await {
                Ok(written) => written,
                Err(source) => return self.fail(index, first_line, source),
            };
            if !my_turn(&mut turn, index).await {
                // an earlier batch failed; dropping the transaction rolls this one back
                return;
            }
            if let Err(e) = tx.commit().await {
                return self.fail(index, first_line, e.into());
            }
            let rows = {
                let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
                absorb(&mut outcome.report, batch.read);
                absorb(&mut outcome.report, part);
                outcome.report.rows
            };
            self.turn.send_modify(|t| t.committed = index + 1);
            (self.progress)(rows);
        }
    }

    /// Writes a batch in a transaction of its own, left open for the caller to commit.
    async fn write(
        &self,
        writer: &mut BatchWriter<'_>,
        rows: Vec<Row>,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, ImportReport), StoreError> {
        let mut part = ImportReport::new(writer.kind, false);
        let mut tx = if two_lanes(writer.kind) {
            collect_words(self.db, &rows).await?;
            // A batch holds its locks while it waits for the batch before it to commit, a
            // wait Postgres cannot see: an outside transaction caught between the two would
            // hang all three. A bound on lock waits turns that into a failed batch instead
            // (the import stops there, every earlier batch written).
            self.db
                .pool
                .begin_with(sqlx::AssertSqlSafe(format!("BEGIN; SET LOCAL lock_timeout = '{LANE_LOCK_TIMEOUT}'")))
                .await?
        } else {
            self.db.pool.begin().await?
        };
        writer.write(&mut tx, rows, &mut part).await?;
        Ok((tx, part))
    }

    /// Stops the batches after `index` and keeps the error of the earliest failed batch.
    fn fail(&self, index: usize, line: u64, source: StoreError) {
        self.turn.send_modify(|t| t.failed = Some(t.failed.map_or(index, |f| f.min(index))));
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        if outcome.failure.as_ref().is_none_or(|f| index < f.index) {
            outcome.failure = Some(Failure { index, line, source });
        }
    }
}

/// The longest a batch written beside another waits for a row lock.
const LANE_LOCK_TIMEOUT: &str = "60s";

/// Waits until every batch before `index` is written (true) or one of them failed (false).
async fn my_turn(turn: &mut watch::Receiver<Turn>, index: usize) -> bool {
    match turn.wait_for(|t| t.committed >= index || t.failed.is_some_and(|f| f < index)).await {
        Ok(t) => t.failed.is_none_or(|f| f >= index),
        Err(_) => false,
    }
}

/// Adds the search words of the rows' names to the dictionary and commits them before the
/// batch's transaction starts, so the table's statement trigger finds every word there.
/// Otherwise two batches adding one new word would wait for each other's commit, and the
/// batch before, waiting on the batch after (which waits for it to commit), would never
/// finish. The words of a batch that then fails stay, as a deleted record's words do.
async fn collect_words(db: &Db, rows: &[Row]) -> Result<(), StoreError> {
    let names: Vec<&str> = rows.iter().filter_map(|r| r.fields.get("name").and_then(Value::as_str)).collect();
    if names.is_empty() {
        return Ok(());
    }
    // The words of names joined by a space are the words of each name. Sorted, so two
    // lanes adding words at once lock them in the same order.
    sqlx::query(
        "INSERT INTO search_words (word) SELECT w FROM unnest(crm_words($1)) AS w ORDER BY w ON CONFLICT DO NOTHING",
    )
    .bind(names.join(" "))
    .execute(&db.pool)
    .await?;
    Ok(())
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

impl Plan {
    /// A row's folded duplicate keys: two rows sharing one may be the same record. A
    /// company also clashes with any row of its name (see [`BatchWriter::split_round`]).
    fn keys(&self, fields: &Map<String, Value>) -> Vec<DupKey> {
        let mut keys: Vec<DupKey> = DupKey::of(self.kind, fields).map(|k| k.folded()).into_iter().collect();
        if self.kind == ImportKind::Companies
            && let Some(name) = fields.get("name").and_then(Value::as_str)
        {
            keys.push(DupKey::Name(name.to_lowercase()));
        }
        keys
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
