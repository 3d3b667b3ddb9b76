//! A deal as a chat message: its card, and buttons that move it to the other stages of its
//! pipeline. Record cards, the pipeline view and the deal forms all show a deal this way.

use crm_concepts::records::{Contact, Deal, Page, Pipeline, RecordKind};

use super::Req;
use crate::callback::Callback;
use crate::engine::EngineError;
use crate::{render, t};

/// The pipelines a deal is drawn against: its stage's name and the stages it can move to.
pub async fn pipelines(req: &Req<'_>) -> Result<Vec<Pipeline>, EngineError> {
    let page: Page<Pipeline> = req.ctx.engine.get(req.acting(), "/api/pipelines", &[]).await?;
    Ok(page.items)
}

/// A deal's card and its buttons: one per other stage of its pipeline, then note/edit.
pub async fn deal_view(req: &Req<'_>, deal: &Deal) -> Result<render::View, EngineError> {
    let pipelines = pipelines(req).await?;
    let contact = match deal.contact_id {
        Some(id) => req.ctx.engine.get::<Contact>(req.acting(), &format!("/api/contacts/{id}"), &[]).await.ok(),
        None => None,
    };
    let fields = super::custom_fields::definitions(req, RecordKind::Deal).await;
    let text = render::deal_card(deal, &pipelines, contact.as_ref(), &fields, req.lang);
    let mut rows: render::Rows = Vec::new();
    if let Some(p) = pipelines.iter().find(|p| p.id == deal.pipeline_id) {
        let moves: Vec<(String, Callback)> = p
            .stages
            .iter()
            .filter(|s| s.id != deal.stage_id)
            .map(|s| (format!("→ {}", s.name), Callback::Move { deal: deal.id, stage: s.id }))
            .collect();
        rows.extend(moves.chunks(2).map(<[_]>::to_vec));
    }
    rows.push(vec![
        (t!(req.lang, "button-note"), Callback::Note(RecordKind::Deal, deal.id)),
        (t!(req.lang, "button-edit"), Callback::Edit(RecordKind::Deal, deal.id)),
    ]);
    Ok((text, rows))
}
