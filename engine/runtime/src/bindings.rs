//! Host-side bindings of the `step` world (`wit/step.wit`).
//!
//! Every import is `trappable`: a call without its capability ends the step with a trap
//! instead of returning an error the guest could ignore.

wasmtime::component::bindgen!({
    world: "step",
    path: "../../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use crm::automation::records::{
    Activity, Company, CompanyFilter, CompanyPatch, Contact, ContactFilter, ContactPatch, Deal, DealFilter, DealPatch,
    DealStatus, NewCompany, NewContact, NewDeal, NewNote, NewTask, Note, NoteFilter, NotePatch, RecordKind, Task,
    TaskFilter, TaskPatch, User,
};
pub use crm::automation::types::{ErrorKind, HostError, StepContext};
