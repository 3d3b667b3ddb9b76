//! The pipeline: deals by stage, and moving a deal with a button.

use crm_concepts::records::{Deal, Id, Page, RecordKind};
use teloxide::types::MessageId;

use super::Req;
use super::deal_view::pipelines;
use crate::callback::Callback;
use crate::engine::EngineError;
use crate::render;

/// Buttons beyond this make the keyboard unwieldy on a phone; the stage buttons list the rest.
const MAX_DEAL_BUTTONS: usize = 24;

pub async fn overview(req: &Req<'_>, args: &str) {
    let all = match pipelines(req).await {
        Ok(p) => p,
        Err(e) => return req.fail(&e),
    };
    let wanted = args.trim();
    let pipeline =
        if wanted.is_empty() { all.first() } else { all.iter().find(|p| p.name.eq_ignore_ascii_case(wanted)) };
    let Some(pipeline) = pipeline else {
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        req.reply(&format!(
            "No pipeline called “{}”. Pipelines: {}",
            crate::text::ellipsize(wanted, 60),
            names.join(", ")
        ));
        return;
    };
    let deals: Result<Page<Deal>, EngineError> = req
        .ctx
        .engine
        .get(
            req.acting(),
            "/api/deals",
            &[("pipeline_id", pipeline.id.to_string()), ("status", "open".into()), ("limit", "200".into())],
        )
        .await;
    let deals = match deals {
        Ok(p) => p.items,
        Err(e) => return req.fail(&e),
    };
    let mut lines = vec![format!("📊 {} — {} open deals", pipeline.name, deals.len())];
    let mut deal_rows = Vec::new();
    let mut stage_row = Vec::new();
    for stage in &pipeline.stages {
        let in_stage: Vec<&Deal> = deals.iter().filter(|d| d.stage_id == stage.id).collect();
        if stage.kind != crm_concepts::records::StageKind::Open && in_stage.is_empty() {
            continue;
        }
        let total: i64 = in_stage.iter().map(|d| d.amount_minor).sum();
        let currency = in_stage.first().map_or(req.ctx.default_currency.as_str(), |d| d.currency.as_str());
        lines.push(String::new());
        lines.push(format!("▸ {} ({}) · {}", stage.name, in_stage.len(), render::money(total, currency)));
        for d in &in_stage {
            lines.push(format!(
                "   • {} — {}",
                crate::text::ellipsize(&d.title, 60),
                render::money(d.amount_minor, &d.currency)
            ));
            if deal_rows.len() < MAX_DEAL_BUTTONS {
                deal_rows
                    .push(vec![(format!("💼 {} · {}", d.title, stage.name), Callback::Open(RecordKind::Deal, d.id))]);
            }
        }
        if !in_stage.is_empty() {
            stage_row.push((format!("{} ({})", stage.name, in_stage.len()), Callback::Stage(stage.id)));
        }
    }
    if deals.is_empty() {
        lines.push("\nNo open deals yet — add one with /adddeal.".into());
    } else {
        lines.push("\nTap a deal to open it and move it to another stage.".into());
    }
    let mut rows = deal_rows;
    rows.extend(stage_row.chunks(3).map(<[_]>::to_vec));
    req.reply_with(&lines.join("\n"), render::keyboard(rows));
}

pub async fn stage(req: &Req<'_>, stage: Id) -> Option<String> {
    let deals: Result<Page<Deal>, EngineError> = req
        .ctx
        .engine
        .get(req.acting(), "/api/deals", &[("stage_id", stage.to_string()), ("limit", "50".into())])
        .await;
    let deals = match deals {
        Ok(p) => p.items,
        Err(e) => {
            super::log_engine_error(&e);
            return Some(e.for_chat());
        }
    };
    if deals.is_empty() {
        return Some("No deals in this stage any more.".into());
    }
    let all = pipelines(req).await.unwrap_or_default();
    let name = render::stage_name(&all, stage);
    let rows = deals
        .iter()
        .map(|d| {
            vec![(
                format!("💼 {} — {}", d.title, render::money(d.amount_minor, &d.currency)),
                Callback::Open(RecordKind::Deal, d.id),
            )]
        })
        .collect();
    req.reply_with(&format!("Deals in {name} ({}):", deals.len()), render::keyboard(rows));
    None
}

pub async fn move_menu(req: &Req<'_>, deal: Id) -> Option<String> {
    super::cards::show(req, RecordKind::Deal, deal).await
}

/// Moves the deal and redraws its card in place.
pub async fn move_deal(req: &Req<'_>, message_id: MessageId, deal: Id, stage: Id) -> Option<String> {
    let moved: Result<Deal, EngineError> = req
        .ctx
        .engine
        .post(req.acting(), &format!("/api/deals/{deal}/move"), &serde_json::json!({"stage_id": stage}))
        .await;
    let deal = match moved {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Some("That deal no longer exists.".into()),
        Err(e) => {
            super::log_engine_error(&e);
            return Some(e.for_chat());
        }
    };
    match super::cards::card(req, RecordKind::Deal, deal.id).await {
        Ok((text, rows)) => {
            req.ctx.out.edit(req.chat, message_id, &text, render::keyboard(rows), true);
            let all = pipelines(req).await.unwrap_or_default();
            Some(format!("Moved to {}", render::stage_name(&all, deal.stage_id)))
        }
        Err(e) => {
            super::log_engine_error(&e);
            Some("Moved.".into())
        }
    }
}
