//! CSV export: every live record a list filter selects, in the columns an import reads (plus
//! `id` and the fields the store sets), so an export imports again as it is. Each defined
//! custom field of the kind gets a column of its own after those (`custom.tier`), written
//! as a person would type it; the `custom` column still carries the whole object.

use crm_concepts::custom_fields::FieldDefinition;
use crm_concepts::import::{ColumnType, ImportKind};
use crm_concepts::money;
use crm_concepts::records::{CompanyFilter, ContactFilter, DealFilter, Page, PageRequest, TaskFilter};
use serde::Serialize;
use serde_json::Value;

use crate::error::StoreError;
use crate::{Db, companies, contacts, custom_fields, deals, tasks};

/// What to export: a kind with its list filter.
#[derive(Debug, Clone)]
pub enum Selection {
    Contacts(ContactFilter),
    Companies(CompanyFilter),
    Deals(DealFilter),
    Tasks(TaskFilter),
}

impl Selection {
    pub fn kind(&self) -> ImportKind {
        match self {
            Selection::Contacts(_) => ImportKind::Contacts,
            Selection::Companies(_) => ImportKind::Companies,
            Selection::Deals(_) => ImportKind::Deals,
            Selection::Tasks(_) => ImportKind::Tasks,
        }
    }
}

/// The header: `id`, the importable columns, then the read-only ones.
pub fn header(kind: ImportKind) -> Vec<&'static str> {
    let mut names = vec!["id"];
    names.extend(kind.columns().iter().map(|c| c.name));
    names.extend(kind.read_only_columns().iter().filter(|c| **c != "id"));
    names
}

/// The selected records as CSV text.
pub async fn export(db: &Db, selection: &Selection) -> Result<String, StoreError> {
    let kind = selection.kind();
    let names = header(kind);
    let defined = custom_fields::list(db, Some(kind.record_kind())).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let custom_names = defined.iter().map(|d| custom_fields::column(&d.key));
    out.write_record(names.iter().map(|n| n.to_string()).chain(custom_names)).map_err(write_failed)?;
    let mut page = PageRequest { limit: Some(PageRequest::MAX_LIMIT), cursor: None, sort: Some("id".into()) };
    loop {
        let (rows, next) = match selection {
            Selection::Contacts(f) => values(contacts::list(db, f, &page).await?),
            Selection::Companies(f) => values(companies::list(db, f, &page).await?),
            Selection::Deals(f) => values(deals::list(db, f, &page).await?),
            Selection::Tasks(f) => values(tasks::list(db, f, &page).await?),
        };
        for row in &rows {
            let mut cells: Vec<String> = names.iter().map(|n| cell(kind, row, n)).collect();
            cells.extend(defined.iter().map(|d| custom_cell(d, row)));
            out.write_record(&cells).map_err(write_failed)?;
        }
        match next {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    let bytes = out.into_inner().map_err(|e| write_failed(e.into_error().into()))?;
    String::from_utf8(bytes).map_err(|e| StoreError::InvalidQuery(format!("export produced invalid text: {e}")))
}

fn write_failed(e: csv::Error) -> StoreError {
    StoreError::InvalidQuery(format!("writing CSV: {e}"))
}

fn values<T: Serialize>(page: Page<T>) -> (Vec<Value>, Option<String>) {
    let rows = page.items.iter().filter_map(|r| serde_json::to_value(r).ok()).collect();
    (rows, page.next_cursor)
}

fn custom_cell(definition: &FieldDefinition, row: &Value) -> String {
    row.get("custom").and_then(|c| c.get(&definition.key)).map(|v| definition.cell(v)).unwrap_or_default()
}

/// One cell, written the way an import reads it back.
fn cell(kind: ImportKind, row: &Value, name: &str) -> String {
    let ty = kind.columns().iter().find(|c| c.name == name).map(|c| c.ty);
    if ty == Some(ColumnType::Money) {
        let currency = row.get("currency").and_then(Value::as_str).unwrap_or("USD");
        return money::plain(row.get("amount_minor").and_then(Value::as_i64).unwrap_or(0), currency);
    }
    match row.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("; "),
        Some(Value::Object(m)) if m.is_empty() => String::new(),
        Some(v) => v.to_string(),
    }
}
