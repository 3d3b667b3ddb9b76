//! Dialogues that fill a record field by field. State lives in memory, one dialogue per
//! (chat, user): a bot restart forgets unfinished dialogues (nothing was written yet — a
//! record is created or changed only by the last answer, in one API call), and the user
//! starts over. Dialogues idle for 30 minutes are forgotten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crm_concepts::custom_fields::FieldDefinition;
use crm_concepts::records::{Id, RecordKind};
use serde_json::{Map, Value};

const IDLE_LIMIT: Duration = Duration::from_secs(30 * 60);

/// What a dialogue produces when its last field is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    AddContact,
    AddCompany,
    EditContact(Id),
    EditCompany(Id),
    AddDeal,
    EditDeal(Id),
    AddTask,
    Note(RecordKind, Id),
}

impl FormKind {
    /// For "Cancelled …" and "Nothing was saved" messages.
    pub fn describe(self) -> String {
        match self {
            FormKind::AddContact => "adding a contact".into(),
            FormKind::AddCompany => "adding a company".into(),
            FormKind::EditContact(id) => format!("editing contact #{id}"),
            FormKind::EditCompany(id) => format!("editing company #{id}"),
            FormKind::AddDeal => "adding a deal".into(),
            FormKind::EditDeal(id) => format!("editing deal #{id}"),
            FormKind::AddTask => "adding a task".into(),
            FormKind::Note(kind, id) => format!("the note on {kind} #{id}"),
        }
    }

    /// The fields asked, in order. Edits ask which field first, then just that one.
    pub fn fields(self) -> Vec<Field> {
        match self {
            FormKind::AddContact => vec![Field::Name, Field::Email, Field::Phone, Field::Company],
            FormKind::AddCompany => vec![Field::Name, Field::Domain, Field::Phone],
            FormKind::AddDeal => vec![Field::Title, Field::Amount, Field::Contact, Field::Stage, Field::ExpectedClose],
            FormKind::AddTask => vec![Field::Title, Field::Due],
            FormKind::Note(..) => vec![Field::Body],
            FormKind::EditContact(_) | FormKind::EditCompany(_) | FormKind::EditDeal(_) => Vec::new(),
        }
    }

    /// The record an edit dialogue changes.
    pub fn edited(self) -> Option<(RecordKind, Id)> {
        match self {
            FormKind::EditContact(id) => Some((RecordKind::Contact, id)),
            FormKind::EditCompany(id) => Some((RecordKind::Company, id)),
            FormKind::EditDeal(id) => Some((RecordKind::Deal, id)),
            _ => None,
        }
    }

    /// The fields an edit may change.
    pub fn editable(self) -> &'static [Field] {
        match self {
            FormKind::EditContact(_) => &[Field::Name, Field::Email, Field::Phone, Field::Company],
            FormKind::EditCompany(_) => &[Field::Name, Field::Domain, Field::Phone],
            FormKind::EditDeal(_) => &[Field::Title, Field::Amount, Field::Contact, Field::ExpectedClose],
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Email,
    Phone,
    Company,
    Domain,
    Title,
    Amount,
    Contact,
    Stage,
    ExpectedClose,
    Due,
    Body,
    /// a custom field: the next of [`Dialogue::custom_order`]
    Custom,
}

impl Field {
    pub fn label(self) -> &'static str {
        match self {
            Field::Name => "Name",
            Field::Email => "Email",
            Field::Phone => "Phone",
            Field::Company => "Company",
            Field::Domain => "Domain",
            Field::Title => "Title",
            Field::Amount => "Amount",
            Field::Contact => "Contact",
            Field::Stage => "Stage",
            Field::ExpectedClose => "Expected close",
            Field::Due => "Due",
            Field::Body => "Text",
            Field::Custom => "Custom field",
        }
    }

    /// Whether `-` may leave it empty.
    pub fn optional(self) -> bool {
        matches!(
            self,
            Field::Email
                | Field::Phone
                | Field::Company
                | Field::Domain
                | Field::Contact
                | Field::ExpectedClose
                | Field::Due
                | Field::Custom
        )
    }

    /// The API field names this answer fills (an amount fills two).
    pub fn api_keys(self) -> &'static [&'static str] {
        match self {
            Field::Name => &["name"],
            Field::Email => &["email"],
            Field::Phone => &["phone"],
            Field::Company => &["company_id"],
            Field::Domain => &["domain"],
            Field::Title => &["title"],
            Field::Amount => &["amount_minor", "currency"],
            Field::Contact => &["contact_id"],
            Field::Stage => &["stage_id"],
            Field::ExpectedClose => &["expected_close"],
            Field::Due => &["due_at"],
            Field::Body => &["body"],
            // the whole object: a patch replaces it, so it carries the other keys too
            Field::Custom => &["custom"],
        }
    }

    pub fn for_api_key(key: &str) -> Option<Field> {
        if key.starts_with("custom.") {
            return Some(Field::Custom);
        }
        [
            Field::Name,
            Field::Email,
            Field::Phone,
            Field::Company,
            Field::Domain,
            Field::Title,
            Field::Amount,
            Field::Contact,
            Field::Stage,
            Field::ExpectedClose,
            Field::Due,
            Field::Body,
            Field::Custom,
        ]
        .into_iter()
        .find(|f| f.api_keys().contains(&key))
    }
}

/// One choice offered as a button.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub label: String,
    pub action: ChoiceAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChoiceAction {
    /// edit dialogues: ask for this field
    PickField(Field),
    /// edit dialogues: ask for this custom field (an index into `Dialogue::custom_fields`)
    PickCustom(usize),
    /// set the current field to this value
    Value(Value),
}

#[derive(Debug, Clone)]
pub struct Dialogue {
    /// ties buttons to this dialogue; a press on an older dialogue's button is stale
    pub nonce: u32,
    pub kind: FormKind,
    pub fields: Vec<Field>,
    pub pos: usize,
    /// the request body being assembled, with API field names
    pub values: Map<String, Value>,
    pub choices: Vec<Choice>,
    /// the record kind's custom fields, the record's `custom` object as it was (edits),
    /// and which of the fields the `Field::Custom` entries of `fields` ask, in order (an
    /// edit asks the one picked, an add dialogue the required ones)
    pub custom_fields: Vec<FieldDefinition>,
    pub custom_before: Map<String, Value>,
    pub custom_order: Vec<usize>,
    touched: Instant,
}

impl Dialogue {
    pub fn current(&self) -> Option<Field> {
        self.fields.get(self.pos).copied()
    }

    /// The custom field being asked, when the current field is one.
    pub fn custom(&self) -> Option<&FieldDefinition> {
        if self.current() != Some(Field::Custom) {
            return None;
        }
        let n = self.fields[..self.pos].iter().filter(|f| **f == Field::Custom).count();
        self.custom_order.get(n).and_then(|i| self.custom_fields.get(*i))
    }

    /// The record's `custom` object (with the answers so far) with the asked field set to
    /// `value` (`null`, which removes it, for `None`), as the request sends it.
    pub fn custom_with(&self, value: Option<Value>) -> Value {
        let mut custom = match self.values.get("custom") {
            Some(Value::Object(so_far)) => so_far.clone(),
            _ => self.custom_before.clone(),
        };
        if let Some(f) = self.custom() {
            // `null` removes the key: a patch's `custom` is merged into the record's.
            custom.insert(f.key.clone(), value.unwrap_or(Value::Null));
        }
        Value::Object(custom)
    }

    /// Records the answer for the current field and moves on.
    pub fn set(&mut self, values: Vec<(&str, Value)>) {
        for (k, v) in values {
            self.values.insert(k.to_string(), v);
        }
        self.pos += 1;
        self.choices.clear();
    }

    pub fn is_complete(&self) -> bool {
        !self.fields.is_empty() && self.pos >= self.fields.len()
    }

    /// Goes back to `field` after the engine refused its value.
    pub fn rewind_to(&mut self, field: Field) -> bool {
        match self.fields.iter().position(|f| *f == field) {
            Some(i) => {
                self.pos = i;
                self.choices.clear();
                for key in field.api_keys() {
                    self.values.remove(*key);
                }
                true
            }
            None => false,
        }
    }
}

#[derive(Default)]
pub struct Dialogues {
    map: Mutex<HashMap<(i64, i64), Dialogue>>,
    nonce: AtomicU32,
}

impl Dialogues {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i64), Dialogue>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a dialogue, replacing any other of the same user in the chat.
    pub fn start(&self, chat: i64, user: i64, kind: FormKind) -> Dialogue {
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let d = Dialogue {
            nonce,
            kind,
            fields: kind.fields(),
            pos: 0,
            values: Map::new(),
            choices: Vec::new(),
            custom_fields: Vec::new(),
            custom_before: Map::new(),
            custom_order: Vec::new(),
            touched: Instant::now(),
        };
        let mut map = self.lock();
        map.retain(|_, d| d.touched.elapsed() < IDLE_LIMIT);
        map.insert((chat, user), d.clone());
        d
    }

    pub fn get(&self, chat: i64, user: i64) -> Option<Dialogue> {
        let mut map = self.lock();
        match map.get(&(chat, user)) {
            Some(d) if d.touched.elapsed() >= IDLE_LIMIT => {
                map.remove(&(chat, user));
                None
            }
            other => other.cloned(),
        }
    }

    pub fn put(&self, chat: i64, user: i64, mut d: Dialogue) {
        d.touched = Instant::now();
        self.lock().insert((chat, user), d);
    }

    pub fn end(&self, chat: i64, user: i64) -> Option<Dialogue> {
        self.lock().remove(&(chat, user))
    }

    pub fn active(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialogues_are_per_chat_user_and_nonces_differ() {
        let ds = Dialogues::default();
        let a = ds.start(1, 1, FormKind::AddContact);
        let b = ds.start(2, 2, FormKind::AddDeal);
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(ds.get(1, 1).unwrap().kind, FormKind::AddContact);
        assert!(ds.get(1, 2).is_none());
        let c = ds.start(1, 1, FormKind::AddTask);
        assert_eq!(ds.get(1, 1).unwrap().nonce, c.nonce);
        assert_eq!(ds.active(), 2);
        assert!(ds.end(1, 1).is_some() && ds.get(1, 1).is_none());
    }

    #[test]
    fn rewinding_clears_the_refused_answer() {
        let ds = Dialogues::default();
        let mut d = ds.start(1, 1, FormKind::AddContact);
        d.set(vec![("name", Value::from("Ann"))]);
        d.set(vec![("email", Value::from("taken@x.io"))]);
        assert!(d.rewind_to(Field::for_api_key("email").unwrap()));
        assert_eq!(d.current(), Some(Field::Email));
        assert!(!d.values.contains_key("email") && d.values.contains_key("name"));
    }
}
