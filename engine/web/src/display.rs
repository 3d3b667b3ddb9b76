//! How values read on a page: money, times in the reader's zone, JSON, links with their
//! query strings.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};

pub fn money(amount_minor: i64, currency: &str) -> String {
    crm_concepts::money::format(amount_minor, currency)
}

/// `2026-12-03 09:36` in the reader's `zone`, which the page footer names once.
pub fn when(t: DateTime<Utc>, zone: Tz) -> String {
    crm_concepts::local_time::format(t, zone, zone)
}

pub fn when_opt(t: Option<DateTime<Utc>>, zone: Tz) -> String {
    t.map(|t| when(t, zone)).unwrap_or_default()
}

/// A JSON value, indented, in a `<pre>`.
pub fn json(v: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json { (text) } }
}

/// `path?k=v&…` with the empty parameters left out.
pub fn link(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let present: Vec<(&str, &str)> =
        params.iter().filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v))).collect();
    if present.is_empty() {
        return path.to_string();
    }
    format!("{path}?{}", serde_urlencoded::to_string(present).unwrap_or_default())
}

/// The `/kinds/ID` page of a record.
pub fn record_path(kind: crm_concepts::records::RecordKind, id: i64) -> String {
    format!("/{}/{id}", kind.plural())
}
