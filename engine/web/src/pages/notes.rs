//! `POST /notes`: a note on a contact, company, deal or task, from that record's page.

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Form, Router};
use crm_concepts::records::{Id, NewNote, RecordKind};
use crm_store::notes;
use serde::Deserialize;

use crate::auth::{self, Me};
use crate::error::WebError;
use crate::{WebState, display};

pub fn routes() -> Router<WebState> {
    Router::new().route("/notes", post(create))
}

#[derive(Debug, Deserialize)]
struct NoteForm {
    kind: String,
    record_id: Id,
    body: String,
}

async fn create(State(s): State<WebState>, me: Me, Form(f): Form<NoteForm>) -> Result<Response, WebError> {
    me.require_write()?;
    let kind: RecordKind =
        f.kind.parse().map_err(|e: crm_concepts::records::UnknownRecordKind| WebError::BadRequest(e.to_string()))?;
    let mut new = NewNote { body: f.body, ..NewNote::default() };
    match kind {
        RecordKind::Contact => new.contact_id = Some(f.record_id),
        RecordKind::Company => new.company_id = Some(f.record_id),
        RecordKind::Deal => new.deal_id = Some(f.record_id),
        RecordKind::Task => new.task_id = Some(f.record_id),
        other => return Err(WebError::BadRequest(format!("notes cannot be added to a {other}"))),
    }
    let back = display::record_path(kind, f.record_id);
    match notes::create(&s.db, &me.actor(), new).await {
        Ok(_) => Ok(auth::see_other(&back, Some("Note added."))),
        Err(crm_store::StoreError::Validation { field, message }) => {
            Ok(auth::see_other(&back, Some(&format!("The note was not saved: {field} {message}."))))
        }
        Err(e) => Err(e.into()),
    }
}
