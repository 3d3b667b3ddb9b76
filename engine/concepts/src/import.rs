//! Records in and out as CSV: which columns each kind of record has, what an import may be
//! told (a column map, a dry run, what to do with a duplicate) and what it reports. The
//! store does the work (`crm_store::import`, `crm_store::export`); the CLI and the API
//! speak these types.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kinds of record a CSV file can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportKind {
    Contacts,
    Companies,
    Deals,
    Tasks,
}

impl ImportKind {
    pub const ALL: [ImportKind; 4] =
        [ImportKind::Contacts, ImportKind::Companies, ImportKind::Deals, ImportKind::Tasks];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Contacts => "contacts",
            ImportKind::Companies => "companies",
            ImportKind::Deals => "deals",
            ImportKind::Tasks => "tasks",
        }
    }

    /// The kind of record a row becomes.
    pub fn record_kind(self) -> crate::records::RecordKind {
        use crate::records::RecordKind;
        match self {
            ImportKind::Contacts => RecordKind::Contact,
            ImportKind::Companies => RecordKind::Company,
            ImportKind::Deals => RecordKind::Deal,
            ImportKind::Tasks => RecordKind::Task,
        }
    }

    /// The columns an import reads, in the order an export writes them (after `id`).
    pub fn columns(self) -> &'static [Column] {
        match self {
            ImportKind::Contacts => CONTACT_COLUMNS,
            ImportKind::Companies => COMPANY_COLUMNS,
            ImportKind::Deals => DEAL_COLUMNS,
            ImportKind::Tasks => TASK_COLUMNS,
        }
    }

    /// Columns an export writes that an import leaves alone (the store sets them).
    pub fn read_only_columns(self) -> &'static [&'static str] {
        match self {
            ImportKind::Contacts | ImportKind::Companies => &["id", "created_at", "updated_at"],
            ImportKind::Deals => &["id", "status", "closed_at", "created_at", "updated_at", "stage_changed_at"],
            ImportKind::Tasks => &["id", "done", "done_at", "created_at", "updated_at"],
        }
    }
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<ImportKind, String> {
        ImportKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?} is not something to import: expected contacts, companies, deals or tasks"))
    }
}

const fn c(name: &'static str, ty: ColumnType, required: bool) -> Column {
    Column { name, ty, required }
}

use ColumnType::{Date, DateTime, Id, Json, Money, Tags, Text};

const CONTACT_COLUMNS: &[Column] = &[
    c("name", Text, true),
    c("email", Text, false),
    c("phone", Text, false),
    c("company_id", Id, false),
    c("owner_id", Id, false),
    c("tags", Tags, false),
    c("custom", Json, false),
];
const COMPANY_COLUMNS: &[Column] = &[
    c("name", Text, true),
    c("domain", Text, false),
    c("phone", Text, false),
    c("owner_id", Id, false),
    c("tags", Tags, false),
    c("custom", Json, false),
];
const DEAL_COLUMNS: &[Column] = &[
    c("title", Text, true),
    c("amount", Money, false),
    c("currency", Text, false),
    c("pipeline_id", Id, false),
    c("stage_id", Id, false),
    c("contact_id", Id, false),
    c("company_id", Id, false),
    c("owner_id", Id, false),
    c("expected_close", Date, false),
    c("tags", Tags, false),
    c("custom", Json, false),
];
const TASK_COLUMNS: &[Column] = &[
    c("title", Text, true),
    c("due_at", DateTime, false),
    c("assignee_id", Id, false),
    c("contact_id", Id, false),
    c("company_id", Id, false),
    c("deal_id", Id, false),
    c("custom", Json, false),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// a record id
    Id,
    /// `vip; partner` (`;` or `,` between tags)
    Tags,
    /// a JSON object
    Json,
    /// `2026-03-31`
    Date,
    /// RFC 3339, or a date (midnight UTC)
    DateTime,
    /// an amount as people type it, in the row's `currency`
    Money,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub required: bool,
}

/// What to do with a row whose record already exists (contacts by email, companies by
/// domain, else by name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicate {
    /// leave the existing record; the row is reported as skipped
    #[default]
    Skip,
    /// set the existing record's fields from the row's non-empty cells
    Update,
}

impl FromStr for OnDuplicate {
    type Err = String;
    fn from_str(s: &str) -> Result<OnDuplicate, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "skip" => Ok(OnDuplicate::Skip),
            "update" => Ok(OnDuplicate::Update),
            _ => Err(format!("{s:?}: expected skip or update")),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// the file's column → the record's field, for columns not named like the field
    pub map: BTreeMap<String, String>,
    /// check and count everything, then write nothing
    pub dry_run: bool,
    pub on_duplicate: OnDuplicate,
    /// for deal amounts without a currency
    pub default_currency: String,
}

impl ImportOptions {
    /// Reads `column=field` pairs.
    pub fn parse_map<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<BTreeMap<String, String>, String> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let (column, field) = pair
                .split_once('=')
                .filter(|(c, f)| !c.trim().is_empty() && !f.trim().is_empty())
                .ok_or_else(|| format!("--map {pair:?}: write COLUMN=FIELD, e.g. \"E-mail address=email\""))?;
            map.insert(column.trim().to_string(), field.trim().to_string());
        }
        Ok(map)
    }
}

/// One row the import did not write, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RowNote {
    /// the line of the file the row starts on (the header is line 1)
    pub line: u64,
    pub reason: String,
}

/// A column of the file and the field it fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MappedColumn {
    pub column: String,
    pub field: String,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    pub kind: ImportKind,
    pub dry_run: bool,
    /// data rows read
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    /// duplicates left alone
    pub skipped: Vec<RowNote>,
    /// rows that could not be imported
    pub rejected: Vec<RowNote>,
    /// columns of the file that no field takes
    pub ignored_columns: Vec<String>,
    /// the columns read, in the file's order
    #[serde(default)]
    pub columns: Vec<MappedColumn>,
}

impl ImportReport {
    pub fn new(kind: ImportKind, dry_run: bool) -> ImportReport {
        ImportReport {
            kind,
            dry_run,
            rows: 0,
            created: 0,
            updated: 0,
            skipped: Vec::new(),
            rejected: Vec::new(),
            ignored_columns: Vec::new(),
            columns: Vec::new(),
        }
    }

    /// One line: `12 rows: 9 created, 1 updated, 1 skipped as duplicates, 1 rejected`.
    pub fn summary(&self) -> String {
        let verb = if self.dry_run { "would be " } else { "" };
        format!(
            "{} {}: {} {verb}created, {} {verb}updated, {} skipped as duplicates, {} rejected{}",
            self.rows,
            if self.rows == 1 { "row" } else { "rows" },
            self.created,
            self.updated,
            self.skipped.len(),
            self.rejected.len(),
            if self.dry_run { " (dry run: nothing written)" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_kinds_are_read_with_clear_errors() {
        let map = ImportOptions::parse_map(["E-mail=email", " Full name = name "]).unwrap();
        assert_eq!(map["E-mail"], "email");
        assert_eq!(map["Full name"], "name");
        assert!(ImportOptions::parse_map(["email"]).unwrap_err().contains("COLUMN=FIELD"));
        assert_eq!("Deals".parse::<ImportKind>().unwrap(), ImportKind::Deals);
        assert!("notes".parse::<ImportKind>().is_err());
        assert_eq!("update".parse::<OnDuplicate>().unwrap(), OnDuplicate::Update);
    }
}
