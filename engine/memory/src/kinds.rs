//! What differs between record kinds in the in-memory CRM, as data: the fixture section,
//! which fields hold times, how each filter field matches, and which fields must name an
//! existing record. Everything else is the same generic code for every kind.

use crm_concepts::records::RecordKind;

/// How one field of a filter matches a record.
pub(crate) enum Match {
    /// the record's field equals the filter's value
    Eq(&'static str),
    /// the filter's value is one of the record's `tags`
    Tag,
    /// case-insensitive substring of any of these fields: a stand-in for the store's
    /// fuzzy search
    Text(&'static [&'static str]),
    /// the record's time field is set and earlier than the filter's time
    Before(&'static str),
}

pub(crate) struct Kind {
    pub kind: RecordKind,
    /// every field a record of this kind has
    pub fields: &'static [&'static str],
    pub times: &'static [&'static str],
    /// filter field name → how it matches
    pub filters: &'static [(&'static str, Match)],
    /// field → the kind of record it must name, when set
    pub refs: &'static [(&'static str, RecordKind)],
}

const CREATED: &[&str] = &["created_at", "updated_at"];

pub(crate) const CONTACT: Kind = Kind {
    kind: RecordKind::Contact,
    fields: &["id", "name", "email", "phone", "company_id", "owner_id", "tags", "custom", "created_at", "updated_at"],
    times: CREATED,
    filters: &[
        ("owner_id", Match::Eq("owner_id")),
        ("company_id", Match::Eq("company_id")),
        ("tag", Match::Tag),
        ("q", Match::Text(&["name", "email", "phone"])),
    ],
    refs: &[("company_id", RecordKind::Company)],
};

pub(crate) const COMPANY: Kind = Kind {
    kind: RecordKind::Company,
    fields: &["id", "name", "domain", "phone", "owner_id", "tags", "custom", "created_at", "updated_at"],
    times: CREATED,
    filters: &[("owner_id", Match::Eq("owner_id")), ("tag", Match::Tag), ("q", Match::Text(&["name", "domain"]))],
    refs: &[],
};

pub(crate) const DEAL: Kind = Kind {
    kind: RecordKind::Deal,
    fields: &[
        "id",
        "title",
        "amount_minor",
        "currency",
        "pipeline_id",
        "stage_id",
        "contact_id",
        "company_id",
        "owner_id",
        "expected_close",
        "status",
        "closed_at",
        "tags",
        "custom",
        "created_at",
        "updated_at",
        "stage_changed_at",
    ],
    times: &["created_at", "updated_at", "closed_at", "stage_changed_at"],
    filters: &[
        ("pipeline_id", Match::Eq("pipeline_id")),
        ("stage_id", Match::Eq("stage_id")),
        ("status", Match::Eq("status")),
        ("owner_id", Match::Eq("owner_id")),
        ("contact_id", Match::Eq("contact_id")),
        ("company_id", Match::Eq("company_id")),
        ("q", Match::Text(&["title"])),
        ("stage_changed_before", Match::Before("stage_changed_at")),
    ],
    refs: &[("contact_id", RecordKind::Contact), ("company_id", RecordKind::Company)],
};

pub(crate) const TASK: Kind = Kind {
    kind: RecordKind::Task,
    fields: &[
        "id",
        "title",
        "due_at",
        "done",
        "done_at",
        "assignee_id",
        "contact_id",
        "company_id",
        "deal_id",
        "created_at",
        "updated_at",
    ],
    times: &["created_at", "updated_at", "due_at", "done_at"],
    filters: &[
        ("assignee_id", Match::Eq("assignee_id")),
        ("done", Match::Eq("done")),
        ("due_before", Match::Before("due_at")),
        ("contact_id", Match::Eq("contact_id")),
        ("company_id", Match::Eq("company_id")),
        ("deal_id", Match::Eq("deal_id")),
    ],
    refs: &[("contact_id", RecordKind::Contact), ("company_id", RecordKind::Company), ("deal_id", RecordKind::Deal)],
};

pub(crate) const NOTE: Kind = Kind {
    kind: RecordKind::Note,
    fields: &["id", "body", "author_id", "contact_id", "company_id", "deal_id", "task_id", "created_at", "updated_at"],
    times: CREATED,
    filters: &[
        ("contact_id", Match::Eq("contact_id")),
        ("company_id", Match::Eq("company_id")),
        ("deal_id", Match::Eq("deal_id")),
        ("task_id", Match::Eq("task_id")),
    ],
    refs: &[
        ("contact_id", RecordKind::Contact),
        ("company_id", RecordKind::Company),
        ("deal_id", RecordKind::Deal),
        ("task_id", RecordKind::Task),
    ],
};
