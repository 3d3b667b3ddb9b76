//! Detect duplicate contacts: the same email (case-insensitive, Gmail dots and `+tags`
//! ignored), the same phone number (digits only, last 10), or the same name once case,
//! punctuation and word order are ignored.
//!
//! **Input** (config first, then run input), all optional:
//! - `contact_id`: check this one contact against the others (searches by its name, email
//!   and phone); without it, scan the newest `limit` contacts against each other;
//! - `limit` (default 200, at most 200): how many contacts a scan or a search looks at.
//!
//! **Capabilities:** `records:read`.
//!
//! **Output:** `{"groups": [{"contact_ids": [..], "names": [..], "reasons": ["same email", ..]}],
//! "checked": N}`; with `contact_id`, only the group containing that contact (if any).

use std::collections::{BTreeMap, BTreeSet};

use crm_sdk::records::{self, Contact, ContactFilter};
use crm_sdk::{Input, Output, StepError};
use serde_json::json;

fn normal_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let local = local.split('+').next().unwrap_or(local);
    let local =
        if domain == "gmail.com" || domain == "googlemail.com" { local.replace('.', "") } else { local.to_string() };
    let domain = if domain == "googlemail.com" { "gmail.com" } else { domain };
    (!local.is_empty()).then(|| format!("{local}@{domain}"))
}

fn normal_phone(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    // Fewer than 7 digits is an extension or junk, not a number two people could share.
    (digits.len() >= 7).then(|| digits[digits.len().saturating_sub(10)..].to_string())
}

fn normal_name(name: &str) -> Option<String> {
    let mut words: Vec<String> =
        name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    words.sort();
    // A single word ("Anna") is too common a name to call two contacts the same person.
    (words.len() >= 2).then(|| words.join(" "))
}

/// Union-find over contact indices: a group is every contact linked by any shared key.
struct Groups {
    parent: Vec<usize>,
}

impl Groups {
    fn find(&mut self, i: usize) -> usize {
        let mut root = i;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        let mut j = i;
        while self.parent[j] != root {
            let next = self.parent[j];
            self.parent[j] = root;
            j = next;
        }
        root
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

fn run(input: Input) -> Result<Output, StepError> {
    let limit: u32 = input.setting::<u32>("limit")?.unwrap_or(200).clamp(1, 200);
    let focus: Option<i64> = input.setting("contact_id")?;

    let mut contacts: BTreeMap<i64, Contact> = BTreeMap::new();
    match focus {
        Some(id) => {
            let me = records::get_contact(id)?;
            let mut queries = vec![me.name.clone()];
            queries.extend(me.email.clone());
            queries.extend(me.phone.clone());
            for query in queries {
                let filter = ContactFilter { query: Some(query), limit: Some(limit), ..Default::default() };
                for c in records::find_contacts(&filter)? {
                    contacts.insert(c.id, c);
                }
            }
            contacts.insert(me.id, me);
        }
        None => {
            for c in records::find_contacts(&ContactFilter { limit: Some(limit), ..Default::default() })? {
                contacts.insert(c.id, c);
            }
        }
    }

    let list: Vec<&Contact> = contacts.values().collect();
    let mut groups = Groups { parent: (0..list.len()).collect() };
    let mut reasons: BTreeMap<(usize, usize), BTreeSet<&str>> = BTreeMap::new();
    let mut seen: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (i, c) in list.iter().enumerate() {
        let keys = [
            ("same email", c.email.as_deref().and_then(normal_email)),
            ("same phone", c.phone.as_deref().and_then(normal_phone)),
            ("same name", normal_name(&c.name)),
        ];
        for (reason, key) in keys {
            let Some(key) = key else { continue };
            match seen.get(&(reason, key.clone())) {
                Some(&first) => {
                    groups.join(first, i);
                    reasons.entry((first, i)).or_default().insert(reason);
                }
                None => {
                    seen.insert((reason, key), i);
                }
            }
        }
    }

    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..list.len() {
        let root = groups.find(i);
        members.entry(root).or_default().push(i);
    }
    let mut found = Vec::new();
    for (root, idx) in members {
        if idx.len() < 2 {
            continue;
        }
        let ids: Vec<i64> = idx.iter().map(|&i| list[i].id).collect();
        if focus.is_some_and(|f| !ids.contains(&f)) {
            continue;
        }
        let why: BTreeSet<&str> = reasons
            .iter()
            .filter(|((a, _), _)| groups.parent[*a] == root || idx.contains(a))
            .flat_map(|(_, r)| r.iter().copied())
            .collect();
        let names: Vec<&str> = idx.iter().map(|&i| list[i].name.as_str()).collect();
        found.push(json!({ "contact_ids": ids, "names": names, "reasons": why }));
    }
    Ok(Output::json(json!({ "groups": found, "checked": list.len() })))
}

crm_sdk::step!(run);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_keys() {
        assert_eq!(normal_email(" Ann.Lee+crm@GMail.com").as_deref(), Some("annlee@gmail.com"));
        assert_eq!(normal_email("ann.lee@acme.io").as_deref(), Some("ann.lee@acme.io"));
        assert_eq!(normal_phone("+1 (555) 010-2030").as_deref(), Some("5550102030"));
        assert_eq!(normal_phone("12-34"), None);
        assert_eq!(normal_name("Lee, Ann").as_deref(), Some("ann lee"));
        assert_eq!(normal_name("Ann"), None);
    }
}
