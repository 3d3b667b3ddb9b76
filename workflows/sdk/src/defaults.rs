//! `Default` for the filter and patch records, so a step names only the fields it sets:
//! `DealFilter { contact_id: Some(id), ..Default::default() }`.

use crate::records::{
    CompanyFilter, CompanyPatch, ContactFilter, ContactPatch, DealFilter, DealPatch, NoteFilter, NotePatch, TaskFilter,
    TaskPatch,
};

macro_rules! all_none {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl Default for $ty {
            fn default() -> Self {
                $ty { $($field: None),* }
            }
        }
    };
}

all_none!(ContactFilter { query, owner_id, company_id, tag, limit });
all_none!(ContactPatch { name, email, phone, company_id, owner_id, tags, custom });
all_none!(CompanyFilter { query, owner_id, tag, limit });
all_none!(CompanyPatch { name, domain, phone, owner_id, tags, custom });
all_none!(DealFilter {
    query,
    pipeline_id,
    stage_id,
    status,
    owner_id,
    contact_id,
    company_id,
    stage_changed_before,
    limit
});
all_none!(DealPatch {
    title,
    amount_minor,
    currency,
    stage_id,
    contact_id,
    company_id,
    owner_id,
    expected_close,
    tags,
    custom
});
all_none!(TaskFilter { assignee_id, done, due_before, contact_id, company_id, deal_id, limit });
all_none!(TaskPatch { title, due_at, done, assignee_id });
all_none!(NoteFilter { contact_id, company_id, deal_id, task_id, limit });
all_none!(NotePatch { body });
