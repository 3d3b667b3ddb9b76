//! What a deal's card needs from its pipeline: the stage names it is drawn with, and the
//! buttons that move it to the other stages. The card itself is in `cards`; the pipeline
//! view and the deal forms read the stages from here too.

use crm_concepts::records::{Deal, Page, Pipeline};

use super::Req;
use crate::callback::Callback;
use crate::engine::EngineError;
use crate::render;

/// The pipelines a deal is drawn against: its stage's name and the stages it can move to.
pub async fn pipelines(req: &Req<'_>) -> Result<Vec<Pipeline>, EngineError> {
    let page: Page<Pipeline> = req.ctx.engine.get(req.acting(), "/api/pipelines", &[]).await?;
    Ok(page.items)
}

/// One button per other stage of the deal's pipeline, two to a row.
pub fn move_rows(deal: &Deal, pipelines: &[Pipeline]) -> render::Rows {
    let Some(p) = pipelines.iter().find(|p| p.id == deal.pipeline_id) else { return Vec::new() };
    let moves: Vec<(String, Callback)> = p
        .stages
        .iter()
        .filter(|s| s.id != deal.stage_id)
        .map(|s| (format!("→ {}", s.name), Callback::Move { deal: deal.id, stage: s.id }))
        .collect();
    moves.chunks(2).map(<[_]>::to_vec).collect()
}
