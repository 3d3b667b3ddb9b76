//! `crm:automation/records`: reads need `records:read`, writes `records:write`. Each
//! function converts its arguments, asks the host and converts the reply back.

use crm_concepts::capability::Capability;
use crm_concepts::host_call::{HostCall, HostReply, MAX_LIST};

use crate::bindings::crm::automation::records::Host;
use crate::bindings::{
    Activity, Company, CompanyFilter, CompanyPatch, Contact, ContactFilter, ContactPatch, Deal, DealFilter, DealPatch,
    HostError, NewCompany, NewContact, NewDeal, NewNote, NewTask, Note, NoteFilter, NotePatch, RecordKind, Task,
    TaskFilter, TaskPatch, User,
};
use crate::convert;
use crate::host_calls::HostCalls;
use crate::state::StepState;

type Reply<T> = wasmtime::Result<Result<T, HostError>>;

fn contact(r: HostReply) -> Option<Contact> {
    if let HostReply::Contact(c) = r { Some(convert::contact(c)) } else { None }
}
fn contacts(r: HostReply) -> Option<Vec<Contact>> {
    if let HostReply::Contacts(v) = r { Some(v.into_iter().map(convert::contact).collect()) } else { None }
}
fn company(r: HostReply) -> Option<Company> {
    if let HostReply::Company(c) = r { Some(convert::company(c)) } else { None }
}
fn companies(r: HostReply) -> Option<Vec<Company>> {
    if let HostReply::Companies(v) = r { Some(v.into_iter().map(convert::company).collect()) } else { None }
}
fn deal(r: HostReply) -> Option<Deal> {
    if let HostReply::Deal(d) = r { Some(convert::deal(d)) } else { None }
}
fn deals(r: HostReply) -> Option<Vec<Deal>> {
    if let HostReply::Deals(v) = r { Some(v.into_iter().map(convert::deal).collect()) } else { None }
}
fn task(r: HostReply) -> Option<Task> {
    if let HostReply::Task(t) = r { Some(convert::task(t)) } else { None }
}
fn tasks(r: HostReply) -> Option<Vec<Task>> {
    if let HostReply::Tasks(v) = r { Some(v.into_iter().map(convert::task).collect()) } else { None }
}
fn note(r: HostReply) -> Option<Note> {
    if let HostReply::Note(n) = r { Some(convert::note(n)) } else { None }
}
fn notes(r: HostReply) -> Option<Vec<Note>> {
    if let HostReply::Notes(v) = r { Some(v.into_iter().map(convert::note).collect()) } else { None }
}
fn user(r: HostReply) -> Option<User> {
    if let HostReply::User(u) = r { Some(convert::user(u)) } else { None }
}
fn activity(r: HostReply) -> Option<Vec<Activity>> {
    if let HostReply::Activity(v) = r { Some(v.into_iter().filter_map(convert::activity).collect()) } else { None }
}

impl<H: HostCalls> StepState<H> {
    /// A write whose arguments must be converted first: the grant is checked before the
    /// arguments, so a step without it is stopped whatever it passed.
    async fn write<T>(
        &mut self,
        call: Result<HostCall, HostError>,
        read: impl FnOnce(HostReply) -> Option<T>,
    ) -> Reply<T> {
        self.require(Capability::RecordsWrite)?;
        match call {
            Ok(call) => self.serve(call, read).await,
            Err(e) => Ok(Err(e)),
        }
    }

    async fn read<T>(
        &mut self,
        call: Result<HostCall, HostError>,
        read: impl FnOnce(HostReply) -> Option<T>,
    ) -> Reply<T> {
        self.require(Capability::RecordsRead)?;
        match call {
            Ok(call) => self.serve(call, read).await,
            Err(e) => Ok(Err(e)),
        }
    }
}

impl<H: HostCalls> Host for StepState<H> {
    async fn get_contact(&mut self, id: i64) -> Reply<Contact> {
        self.serve(HostCall::GetContact { id }, contact).await
    }

    async fn find_contacts(&mut self, filter: ContactFilter) -> Reply<Vec<Contact>> {
        let (filter, limit) = convert::contact_filter(filter);
        self.serve(HostCall::FindContacts { filter, limit }, contacts).await
    }

    async fn create_contact(&mut self, fields: NewContact) -> Reply<Contact> {
        self.write(convert::new_contact(fields).map(|fields| HostCall::CreateContact { fields }), contact).await
    }

    async fn update_contact(&mut self, id: i64, patch: ContactPatch) -> Reply<Contact> {
        self.write(convert::contact_patch(patch).map(|patch| HostCall::UpdateContact { id, patch }), contact).await
    }

    async fn get_company(&mut self, id: i64) -> Reply<Company> {
        self.serve(HostCall::GetCompany { id }, company).await
    }

    async fn find_companies(&mut self, filter: CompanyFilter) -> Reply<Vec<Company>> {
        let (filter, limit) = convert::company_filter(filter);
        self.serve(HostCall::FindCompanies { filter, limit }, companies).await
    }

    async fn create_company(&mut self, fields: NewCompany) -> Reply<Company> {
        self.write(convert::new_company(fields).map(|fields| HostCall::CreateCompany { fields }), company).await
    }

    async fn update_company(&mut self, id: i64, patch: CompanyPatch) -> Reply<Company> {
        self.write(convert::company_patch(patch).map(|patch| HostCall::UpdateCompany { id, patch }), company).await
    }

    async fn get_deal(&mut self, id: i64) -> Reply<Deal> {
        self.serve(HostCall::GetDeal { id }, deal).await
    }

    async fn find_deals(&mut self, filter: DealFilter) -> Reply<Vec<Deal>> {
        self.read(convert::deal_filter(filter).map(|(filter, limit)| HostCall::FindDeals { filter, limit }), deals)
            .await
    }

    async fn create_deal(&mut self, fields: NewDeal) -> Reply<Deal> {
        self.write(convert::new_deal(fields).map(|fields| HostCall::CreateDeal { fields }), deal).await
    }

    async fn update_deal(&mut self, id: i64, patch: DealPatch) -> Reply<Deal> {
        self.write(convert::deal_patch(patch).map(|patch| HostCall::UpdateDeal { id, patch }), deal).await
    }

    async fn get_task(&mut self, id: i64) -> Reply<Task> {
        self.serve(HostCall::GetTask { id }, task).await
    }

    async fn find_tasks(&mut self, filter: TaskFilter) -> Reply<Vec<Task>> {
        self.read(convert::task_filter(filter).map(|(filter, limit)| HostCall::FindTasks { filter, limit }), tasks)
            .await
    }

    async fn create_task(&mut self, fields: NewTask) -> Reply<Task> {
        self.write(convert::new_task(fields).map(|fields| HostCall::CreateTask { fields }), task).await
    }

    async fn ensure_task(&mut self, key: String, fields: NewTask) -> Reply<Task> {
        self.write(convert::new_task(fields).map(|fields| HostCall::EnsureTask { key, fields }), task).await
    }

    async fn update_task(&mut self, id: i64, patch: TaskPatch) -> Reply<Task> {
        self.write(convert::task_patch(patch).map(|patch| HostCall::UpdateTask { id, patch }), task).await
    }

    async fn get_note(&mut self, id: i64) -> Reply<Note> {
        self.serve(HostCall::GetNote { id }, note).await
    }

    async fn find_notes(&mut self, filter: NoteFilter) -> Reply<Vec<Note>> {
        let (filter, limit) = convert::note_filter(filter);
        self.serve(HostCall::FindNotes { filter, limit }, notes).await
    }

    async fn create_note(&mut self, fields: NewNote) -> Reply<Note> {
        self.serve(HostCall::CreateNote { fields: convert::new_note(fields) }, note).await
    }

    async fn update_note(&mut self, id: i64, patch: NotePatch) -> Reply<Note> {
        self.serve(HostCall::UpdateNote { id, patch: convert::note_patch(patch) }, note).await
    }

    async fn record_activity(&mut self, kind: RecordKind, id: i64, limit: u32) -> Reply<Vec<Activity>> {
        let call = HostCall::RecordActivity { kind: convert::record_kind(kind), id, limit: limit.clamp(1, MAX_LIST) };
        self.serve(call, activity).await
    }

    async fn get_user(&mut self, id: i64) -> Reply<User> {
        self.serve(HostCall::GetUser { id }, user).await
    }
}
