//! The services a step's imports reach, over Postgres through crm-store: every write goes
//! through the same functions as the API, so it is validated, attributed to the run's
//! acting user and the run itself, and leaves activity and outbox rows.

use chrono::{DateTime, NaiveDate, Utc};
use crm_concepts::records::{self as rec, Actor, PageRequest};
use crm_runtime::bindings::{self as wit, HostError};
use crm_runtime::services::{CallContext, HostResult, RecordsHost, WorkflowHost, list_limit};
use crm_store::{Db, StoreError};
use serde_json::{Map, Value};

pub struct PgServices {
    db: Db,
}

impl PgServices {
    pub fn new(db: Db) -> PgServices {
        PgServices { db }
    }
}

fn host_error(e: StoreError) -> HostError {
    match e {
        StoreError::NotFound { .. } => HostError::NotFound(e.to_string()),
        StoreError::Validation { .. } | StoreError::InvalidQuery(_) => HostError::Invalid(e.to_string()),
        StoreError::Conflict(m) => HostError::Conflict(m),
        // A database failure is not the step's fault: retrying the step may succeed.
        StoreError::Db(_) => {
            tracing::warn!("a step's store call failed: {e}");
            HostError::Unavailable("the CRM database is unavailable".into())
        }
    }
}

fn actor(cx: &CallContext) -> Actor {
    Actor { user_id: cx.acting_user, origin_run: Some(cx.key.run_id) }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> Result<DateTime<Utc>, HostError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| HostError::Invalid(format!("{ms} is not a valid time")))
}

fn date(text: &str) -> Result<NaiveDate, HostError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| HostError::Invalid(format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// `custom` arrives validated as a JSON object by the runtime.
fn custom(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

fn page(limit: Option<u32>) -> PageRequest {
    PageRequest { limit: Some(list_limit(limit) as u32), cursor: None, sort: None }
}

fn contact(c: rec::Contact) -> wit::Contact {
    wit::Contact {
        id: c.id,
        name: c.name,
        email: c.email,
        phone: c.phone,
        company_id: c.company_id,
        owner_id: c.owner_id,
        tags: c.tags,
        custom: Value::Object(c.custom).to_string(),
        created_at: ms(c.created_at),
        updated_at: ms(c.updated_at),
    }
}

fn company(c: rec::Company) -> wit::Company {
    wit::Company {
        id: c.id,
        name: c.name,
        domain: c.domain,
        phone: c.phone,
        owner_id: c.owner_id,
        tags: c.tags,
        custom: Value::Object(c.custom).to_string(),
        created_at: ms(c.created_at),
        updated_at: ms(c.updated_at),
    }
}

fn status_to_wit(s: rec::DealStatus) -> wit::DealStatus {
    match s {
        rec::DealStatus::Open => wit::DealStatus::Open,
        rec::DealStatus::Won => wit::DealStatus::Won,
        rec::DealStatus::Lost => wit::DealStatus::Lost,
    }
}

fn status_from_wit(s: wit::DealStatus) -> rec::DealStatus {
    match s {
        wit::DealStatus::Open => rec::DealStatus::Open,
        wit::DealStatus::Won => rec::DealStatus::Won,
        wit::DealStatus::Lost => rec::DealStatus::Lost,
    }
}

fn deal(d: rec::Deal) -> wit::Deal {
    wit::Deal {
        id: d.id,
        title: d.title,
        amount_minor: d.amount_minor,
        currency: d.currency,
        pipeline_id: d.pipeline_id,
        stage_id: d.stage_id,
        contact_id: d.contact_id,
        company_id: d.company_id,
        owner_id: d.owner_id,
        expected_close: d.expected_close.map(|x| x.format("%Y-%m-%d").to_string()),
        status: status_to_wit(d.status),
        closed_at: d.closed_at.map(ms),
        tags: d.tags,
        custom: Value::Object(d.custom).to_string(),
        created_at: ms(d.created_at),
        updated_at: ms(d.updated_at),
        stage_changed_at: ms(d.stage_changed_at),
    }
}

fn task(t: rec::Task) -> wit::Task {
    wit::Task {
        id: t.id,
        title: t.title,
        due_at: t.due_at.map(ms),
        done: t.done,
        done_at: t.done_at.map(ms),
        assignee_id: t.assignee_id,
        contact_id: t.contact_id,
        company_id: t.company_id,
        deal_id: t.deal_id,
        created_at: ms(t.created_at),
        updated_at: ms(t.updated_at),
    }
}

fn note(n: rec::Note) -> wit::Note {
    wit::Note {
        id: n.id,
        body: n.body,
        author_id: n.author_id,
        contact_id: n.contact_id,
        company_id: n.company_id,
        deal_id: n.deal_id,
        task_id: n.task_id,
        created_at: ms(n.created_at),
        updated_at: ms(n.updated_at),
    }
}

fn kind(k: wit::RecordKind) -> rec::RecordKind {
    match k {
        wit::RecordKind::Contact => rec::RecordKind::Contact,
        wit::RecordKind::Company => rec::RecordKind::Company,
        wit::RecordKind::Deal => rec::RecordKind::Deal,
        wit::RecordKind::Task => rec::RecordKind::Task,
        wit::RecordKind::Note => rec::RecordKind::Note,
    }
}

impl RecordsHost for PgServices {
    async fn get_contact(&self, _cx: &CallContext, id: i64) -> HostResult<wit::Contact> {
        crm_store::contacts::get(&self.db, id).await.map(contact).map_err(host_error)
    }

    async fn find_contacts(&self, _cx: &CallContext, f: wit::ContactFilter) -> HostResult<Vec<wit::Contact>> {
        let filter = rec::ContactFilter { owner_id: f.owner_id, company_id: f.company_id, tag: f.tag, q: f.query };
        let found = crm_store::contacts::list(&self.db, &filter, &page(f.limit)).await.map_err(host_error)?;
        Ok(found.items.into_iter().map(contact).collect())
    }

    async fn create_contact(&self, cx: &CallContext, n: wit::NewContact) -> HostResult<wit::Contact> {
        let new = rec::NewContact {
            name: n.name,
            email: n.email,
            phone: n.phone,
            company_id: n.company_id,
            owner_id: n.owner_id,
            tags: n.tags,
            custom: custom(&n.custom),
        };
        crm_store::contacts::create(&self.db, &actor(cx), new).await.map(contact).map_err(host_error)
    }

    async fn update_contact(&self, cx: &CallContext, id: i64, p: wit::ContactPatch) -> HostResult<wit::Contact> {
        let patch = rec::ContactPatch {
            name: p.name,
            email: p.email,
            phone: p.phone,
            company_id: p.company_id,
            owner_id: p.owner_id,
            tags: p.tags,
            custom: p.custom.as_deref().map(custom),
        };
        crm_store::contacts::update(&self.db, &actor(cx), id, patch).await.map(contact).map_err(host_error)
    }

    async fn get_company(&self, _cx: &CallContext, id: i64) -> HostResult<wit::Company> {
        crm_store::companies::get(&self.db, id).await.map(company).map_err(host_error)
    }

    async fn find_companies(&self, _cx: &CallContext, f: wit::CompanyFilter) -> HostResult<Vec<wit::Company>> {
        let filter = rec::CompanyFilter { owner_id: f.owner_id, tag: f.tag, q: f.query };
        let found = crm_store::companies::list(&self.db, &filter, &page(f.limit)).await.map_err(host_error)?;
        Ok(found.items.into_iter().map(company).collect())
    }

    async fn create_company(&self, cx: &CallContext, n: wit::NewCompany) -> HostResult<wit::Company> {
        let new = rec::NewCompany {
            name: n.name,
            domain: n.domain,
            phone: n.phone,
            owner_id: n.owner_id,
            tags: n.tags,
            custom: custom(&n.custom),
        };
        crm_store::companies::create(&self.db, &actor(cx), new).await.map(company).map_err(host_error)
    }

    async fn update_company(&self, cx: &CallContext, id: i64, p: wit::CompanyPatch) -> HostResult<wit::Company> {
        let patch = rec::CompanyPatch {
            name: p.name,
            domain: p.domain,
            phone: p.phone,
            owner_id: p.owner_id,
            tags: p.tags,
            custom: p.custom.as_deref().map(custom),
        };
        crm_store::companies::update(&self.db, &actor(cx), id, patch).await.map(company).map_err(host_error)
    }

    async fn get_deal(&self, _cx: &CallContext, id: i64) -> HostResult<wit::Deal> {
        crm_store::deals::get(&self.db, id).await.map(deal).map_err(host_error)
    }

    async fn find_deals(&self, _cx: &CallContext, f: wit::DealFilter) -> HostResult<Vec<wit::Deal>> {
        let filter = rec::DealFilter {
            pipeline_id: f.pipeline_id,
            stage_id: f.stage_id,
            status: f.status.map(status_from_wit),
            owner_id: f.owner_id,
            contact_id: f.contact_id,
            company_id: f.company_id,
            q: f.query,
        };
        let mut req = page(f.limit);
        // Staleness: the oldest stage changes first, so the page holds exactly the deals
        // past the cutoff (cut below) rather than an arbitrary sample of them.
        if f.stage_changed_before.is_some() {
            req.sort = Some("stage_changed_at".into());
        }
        let found = crm_store::deals::list(&self.db, &filter, &req).await.map_err(host_error)?;
        let cutoff = f.stage_changed_before.map(time).transpose()?;
        Ok(found.items.into_iter().filter(|d| cutoff.is_none_or(|c| d.stage_changed_at < c)).map(deal).collect())
    }

    async fn create_deal(&self, cx: &CallContext, n: wit::NewDeal) -> HostResult<wit::Deal> {
        let new = rec::NewDeal {
            title: n.title,
            amount_minor: n.amount_minor,
            currency: Some(n.currency),
            pipeline_id: Some(n.pipeline_id),
            stage_id: Some(n.stage_id),
            contact_id: n.contact_id,
            company_id: n.company_id,
            owner_id: n.owner_id,
            expected_close: n.expected_close.as_deref().map(date).transpose()?,
            tags: n.tags,
            custom: custom(&n.custom),
        };
        crm_store::deals::create(&self.db, &actor(cx), new).await.map(deal).map_err(host_error)
    }

    async fn update_deal(&self, cx: &CallContext, id: i64, p: wit::DealPatch) -> HostResult<wit::Deal> {
        let expected_close = match p.expected_close {
            None => None,
            Some(None) => Some(None),
            Some(Some(text)) => Some(Some(date(&text)?)),
        };
        let patch = rec::DealPatch {
            title: p.title,
            amount_minor: p.amount_minor,
            currency: p.currency,
            pipeline_id: None,
            stage_id: p.stage_id,
            contact_id: p.contact_id,
            company_id: p.company_id,
            owner_id: p.owner_id,
            expected_close,
            tags: p.tags,
            custom: p.custom.as_deref().map(custom),
        };
        crm_store::deals::update(&self.db, &actor(cx), id, patch).await.map(deal).map_err(host_error)
    }

    async fn get_task(&self, _cx: &CallContext, id: i64) -> HostResult<wit::Task> {
        crm_store::tasks::get(&self.db, id).await.map(task).map_err(host_error)
    }

    async fn find_tasks(&self, _cx: &CallContext, f: wit::TaskFilter) -> HostResult<Vec<wit::Task>> {
        let filter = rec::TaskFilter {
            assignee_id: f.assignee_id,
            done: f.done,
            due_before: f.due_before.map(time).transpose()?,
            deal_id: f.deal_id,
            contact_id: f.contact_id,
            company_id: f.company_id,
        };
        let found = crm_store::tasks::list(&self.db, &filter, &page(f.limit)).await.map_err(host_error)?;
        Ok(found.items.into_iter().map(task).collect())
    }

    async fn create_task(&self, cx: &CallContext, n: wit::NewTask) -> HostResult<wit::Task> {
        let new = rec::NewTask {
            title: n.title,
            due_at: n.due_at.map(time).transpose()?,
            assignee_id: n.assignee_id,
            contact_id: n.contact_id,
            company_id: n.company_id,
            deal_id: n.deal_id,
        };
        crm_store::tasks::create(&self.db, &actor(cx), new).await.map(task).map_err(host_error)
    }

    async fn update_task(&self, cx: &CallContext, id: i64, p: wit::TaskPatch) -> HostResult<wit::Task> {
        let due_at = match p.due_at {
            None => None,
            Some(None) => Some(None),
            Some(Some(t)) => Some(Some(time(t)?)),
        };
        let patch =
            rec::TaskPatch { title: p.title, due_at, done: p.done, assignee_id: p.assignee_id, ..Default::default() };
        crm_store::tasks::update(&self.db, &actor(cx), id, patch).await.map(task).map_err(host_error)
    }

    async fn get_note(&self, _cx: &CallContext, id: i64) -> HostResult<wit::Note> {
        crm_store::notes::get(&self.db, id).await.map(note).map_err(host_error)
    }

    async fn find_notes(&self, _cx: &CallContext, f: wit::NoteFilter) -> HostResult<Vec<wit::Note>> {
        let filter = rec::NoteFilter {
            contact_id: f.contact_id,
            company_id: f.company_id,
            deal_id: f.deal_id,
            task_id: f.task_id,
        };
        let found = crm_store::notes::list(&self.db, &filter, &page(f.limit)).await.map_err(host_error)?;
        Ok(found.items.into_iter().map(note).collect())
    }

    async fn create_note(&self, cx: &CallContext, n: wit::NewNote) -> HostResult<wit::Note> {
        let new = rec::NewNote {
            body: n.body,
            contact_id: n.contact_id,
            company_id: n.company_id,
            deal_id: n.deal_id,
            task_id: n.task_id,
        };
        crm_store::notes::create(&self.db, &actor(cx), new).await.map(note).map_err(host_error)
    }

    async fn update_note(&self, cx: &CallContext, id: i64, p: wit::NotePatch) -> HostResult<wit::Note> {
        let patch = rec::NotePatch { body: p.body };
        crm_store::notes::update(&self.db, &actor(cx), id, patch).await.map(note).map_err(host_error)
    }

    async fn record_activity(
        &self,
        _cx: &CallContext,
        k: wit::RecordKind,
        id: i64,
        limit: usize,
    ) -> HostResult<Vec<wit::Activity>> {
        let req = PageRequest { limit: Some(limit as u32), cursor: None, sort: None };
        let found = crm_store::activity::list(&self.db, kind(k), id, &req).await.map_err(host_error)?;
        Ok(found
            .items
            .into_iter()
            .map(|a| wit::Activity {
                at: ms(a.at),
                actor_id: a.actor_id,
                record_kind: k,
                record_id: a.record_id,
                action: a.action,
            })
            .collect())
    }
}

impl WorkflowHost for PgServices {
    async fn state_get(&self, cx: &CallContext, key: &str) -> HostResult<Option<String>> {
        crm_store::workflow_state::get(&self.db, &cx.workflow, key).await.map_err(host_error)
    }

    async fn state_set(&self, cx: &CallContext, key: &str, value: &str) -> HostResult<()> {
        crm_store::workflow_state::set(&self.db, &cx.workflow, key, value).await.map_err(host_error)
    }

    async fn state_delete(&self, cx: &CallContext, key: &str) -> HostResult<()> {
        crm_store::workflow_state::delete(&self.db, &cx.workflow, key).await.map_err(host_error)
    }

    async fn secret(&self, _cx: &CallContext, name: &str) -> HostResult<String> {
        crm_store::secrets::get(&self.db, name)
            .await
            .map_err(host_error)?
            .ok_or_else(|| HostError::NotFound(format!("no secret named {name}")))
    }

    async fn notify(&self, cx: &CallContext, user_id: i64, text: &str) -> HostResult<()> {
        let origin = crm_store::notifications::Origin {
            run_id: Some(cx.key.run_id),
            step: Some(&cx.key.step),
            workflow: Some(&cx.workflow),
        };
        crm_store::notifications::add(&self.db, user_id, text, origin).await.map(|_| ()).map_err(|e| match e {
            StoreError::Validation { .. } => HostError::Invalid(e.to_string()),
            // the only foreign key: the user
            StoreError::Db(sqlx_err)
                if sqlx_err.as_database_error().and_then(|d| d.code()).as_deref() == Some("23503") =>
            {
                HostError::NotFound(format!("user {user_id} does not exist"))
            }
            other => host_error(other),
        })
    }
}
