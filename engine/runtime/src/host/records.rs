//! `crm:automation/records`: reads need `records:read`, writes `records:write`.

use crm_concepts::capability::Capability;

use crate::bindings::crm::automation::records::Host;
use crate::bindings::{
    Activity, Company, CompanyFilter, CompanyPatch, Contact, ContactFilter, ContactPatch, Deal, DealFilter, DealPatch,
    HostError, NewCompany, NewContact, NewDeal, NewNote, NewTask, Note, NoteFilter, NotePatch, RecordKind, Task,
    TaskFilter, TaskPatch,
};
use crate::services::{MAX_LIST, Services, list_limit};
use crate::state::StepState;

type Reply<T> = wasmtime::Result<Result<T, HostError>>;

/// Custom fields cross the boundary as JSON text; only a JSON object is a valid one.
fn check_custom(custom: Option<&str>) -> Result<(), HostError> {
    match custom {
        None => Ok(()),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(_)) => Ok(()),
            Ok(_) => Err(HostError::Invalid("custom: must be a JSON object".into())),
            Err(e) => Err(HostError::Invalid(format!("custom: not valid JSON: {e}"))),
        },
    }
}

impl<S: Services> StepState<S> {
    fn read(&mut self) -> wasmtime::Result<()> {
        self.require(Capability::RecordsRead)
    }

    fn write(&mut self) -> wasmtime::Result<()> {
        self.require(Capability::RecordsWrite)
    }
}

impl<S: Services> Host for StepState<S> {
    async fn get_contact(&mut self, id: i64) -> Reply<Contact> {
        self.read()?;
        Ok(self.services.get_contact(&self.cx, id).await)
    }

    async fn find_contacts(&mut self, filter: ContactFilter) -> Reply<Vec<Contact>> {
        self.read()?;
        Ok(self.services.find_contacts(&self.cx, filter).await)
    }

    async fn create_contact(&mut self, fields: NewContact) -> Reply<Contact> {
        self.write()?;
        if let Err(e) = check_custom(Some(&fields.custom)) {
            return Ok(Err(e));
        }
        Ok(self.services.create_contact(&self.cx, fields).await)
    }

    async fn update_contact(&mut self, id: i64, patch: ContactPatch) -> Reply<Contact> {
        self.write()?;
        if let Err(e) = check_custom(patch.custom.as_deref()) {
            return Ok(Err(e));
        }
        Ok(self.services.update_contact(&self.cx, id, patch).await)
    }

    async fn get_company(&mut self, id: i64) -> Reply<Company> {
        self.read()?;
        Ok(self.services.get_company(&self.cx, id).await)
    }

    async fn find_companies(&mut self, filter: CompanyFilter) -> Reply<Vec<Company>> {
        self.read()?;
        Ok(self.services.find_companies(&self.cx, filter).await)
    }

    async fn create_company(&mut self, fields: NewCompany) -> Reply<Company> {
        self.write()?;
        if let Err(e) = check_custom(Some(&fields.custom)) {
            return Ok(Err(e));
        }
        Ok(self.services.create_company(&self.cx, fields).await)
    }

    async fn update_company(&mut self, id: i64, patch: CompanyPatch) -> Reply<Company> {
        self.write()?;
        if let Err(e) = check_custom(patch.custom.as_deref()) {
            return Ok(Err(e));
        }
        Ok(self.services.update_company(&self.cx, id, patch).await)
    }

    async fn get_deal(&mut self, id: i64) -> Reply<Deal> {
        self.read()?;
        Ok(self.services.get_deal(&self.cx, id).await)
    }

    async fn find_deals(&mut self, filter: DealFilter) -> Reply<Vec<Deal>> {
        self.read()?;
        Ok(self.services.find_deals(&self.cx, filter).await)
    }

    async fn create_deal(&mut self, fields: NewDeal) -> Reply<Deal> {
        self.write()?;
        if let Err(e) = check_custom(Some(&fields.custom)) {
            return Ok(Err(e));
        }
        Ok(self.services.create_deal(&self.cx, fields).await)
    }

    async fn update_deal(&mut self, id: i64, patch: DealPatch) -> Reply<Deal> {
        self.write()?;
        if let Err(e) = check_custom(patch.custom.as_deref()) {
            return Ok(Err(e));
        }
        Ok(self.services.update_deal(&self.cx, id, patch).await)
    }

    async fn get_task(&mut self, id: i64) -> Reply<Task> {
        self.read()?;
        Ok(self.services.get_task(&self.cx, id).await)
    }

    async fn find_tasks(&mut self, filter: TaskFilter) -> Reply<Vec<Task>> {
        self.read()?;
        Ok(self.services.find_tasks(&self.cx, filter).await)
    }

    async fn create_task(&mut self, fields: NewTask) -> Reply<Task> {
        self.write()?;
        Ok(self.services.create_task(&self.cx, fields).await)
    }

    async fn update_task(&mut self, id: i64, patch: TaskPatch) -> Reply<Task> {
        self.write()?;
        Ok(self.services.update_task(&self.cx, id, patch).await)
    }

    async fn get_note(&mut self, id: i64) -> Reply<Note> {
        self.read()?;
        Ok(self.services.get_note(&self.cx, id).await)
    }

    async fn find_notes(&mut self, filter: NoteFilter) -> Reply<Vec<Note>> {
        self.read()?;
        Ok(self.services.find_notes(&self.cx, filter).await)
    }

    async fn create_note(&mut self, fields: NewNote) -> Reply<Note> {
        self.write()?;
        Ok(self.services.create_note(&self.cx, fields).await)
    }

    async fn update_note(&mut self, id: i64, patch: NotePatch) -> Reply<Note> {
        self.write()?;
        Ok(self.services.update_note(&self.cx, id, patch).await)
    }

    async fn record_activity(&mut self, kind: RecordKind, id: i64, limit: u32) -> Reply<Vec<Activity>> {
        self.read()?;
        let limit = list_limit(Some(limit.min(MAX_LIST)));
        Ok(self.services.record_activity(&self.cx, kind, id, limit).await)
    }
}
