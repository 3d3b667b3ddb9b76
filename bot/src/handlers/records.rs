//! Finding records and listing them page by page; their cards are in `cards`.

use crm_concepts::records::{Company, Contact, Deal, Id, Page, RecordKind, SearchHit};

use teloxide::types::MessageId;

use super::{Req, log_engine_error};
use crate::callback::Callback;
use crate::engine::EngineError;
use crate::render;

const SEARCH_LIMIT: usize = 8;
const MAX_QUERY_CHARS: usize = 200;

fn icon(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Contact => "👤",
        RecordKind::Company => "🏢",
        RecordKind::Deal => "💼",
        RecordKind::Task => "⬜",
        _ => "•",
    }
}

pub async fn find(req: &Req<'_>, query: &str, kind: Option<RecordKind>) {
    let query = query.trim();
    if query.is_empty() {
        req.reply("Usage: /find TEXT — e.g. /find Ann, /find acme. Misspellings are fine.");
        return;
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        req.reply(&format!("That search text is too long; use at most {MAX_QUERY_CHARS} characters."));
        return;
    }
    let kinds = match kind {
        Some(k) => k.plural().to_string(),
        None => "contacts,companies,deals".into(),
    };
    let found: Result<Page<SearchHit>, EngineError> = req
        .ctx
        .engine
        .get(
            req.acting(),
            "/api/search",
            &[("q", query.to_string()), ("kinds", kinds), ("limit", SEARCH_LIMIT.to_string())],
        )
        .await;
    let hits = match found {
        Ok(page) => page.items,
        Err(e) => return req.fail(&e),
    };
    let shown = crate::text::ellipsize(query, 60);
    if hits.is_empty() {
        req.reply(&format!("Nothing found for “{shown}”."));
        return;
    }
    let mut lines = vec![format!("Found for “{shown}”:")];
    let mut rows = Vec::new();
    for (i, hit) in hits.iter().enumerate() {
        let subtitle = hit.subtitle.as_deref().map(|s| format!(" — {s}")).unwrap_or_default();
        lines.push(format!("{}. {} {}{}", i + 1, icon(hit.kind), hit.title, subtitle));
        rows.push(vec![(format!("{} {}", icon(hit.kind), hit.title), Callback::Open(hit.kind, hit.id))]);
    }
    req.reply_with(&lines.join("\n"), render::keyboard(rows));
}

const PAGE_SIZE: usize = 10;

/// `/contacts`, `/companies`, `/deals`: the newest ten, with Next/Previous buttons past
/// them, or a search when text is given.
pub async fn list(req: &Req<'_>, kind: RecordKind, args: &str) {
    if !args.trim().is_empty() {
        return find(req, args, Some(kind)).await;
    }
    let list = req.ctx.lists.start(req.chat.0, kind);
    match list_page(req, kind, list, 0, None).await {
        Ok(None) => req.reply(&format!("There are no {} yet.", kind.plural())),
        Ok(Some((text, rows))) => req.reply_with(&text, render::keyboard(rows)),
        Err(e) => req.fail(&e),
    }
}

/// A Next/Previous press: the list's message shows the other page.
pub async fn turn_page(req: &Req<'_>, message_id: MessageId, list: u32, page: u16) -> Option<String> {
    let Some((kind, cursor)) = req.ctx.lists.page(req.chat.0, list, page) else {
        return Some("This list has expired; please send the command again.".into());
    };
    match list_page(req, kind, list, page, cursor).await {
        Ok(Some((text, rows))) => {
            req.ctx.out.edit(req.chat, message_id, &text, render::keyboard(rows), true);
            None
        }
        Ok(None) => Some(format!("There are no more {}.", kind.plural())),
        Err(e) => {
            log_engine_error(&e);
            Some(e.for_chat())
        }
    }
}

/// One page of a list as text and buttons; `None` when it is empty.
async fn list_page(
    req: &Req<'_>,
    kind: RecordKind,
    list: u32,
    page: u16,
    cursor: Option<String>,
) -> Result<Option<render::View>, EngineError> {
    let mut query = vec![("limit", PAGE_SIZE.to_string()), ("sort", "-created_at".to_string())];
    if let Some(c) = cursor {
        query.push(("cursor", c));
    }
    let path = format!("/api/{}", kind.plural());
    let engine = &req.ctx.engine;
    let (items, next): (Vec<(String, Id)>, Option<String>) = match kind {
        RecordKind::Contact => {
            let p = engine.get::<Page<Contact>>(req.acting(), &path, &query).await?;
            (p.items.into_iter().map(|c| (c.name, c.id)).collect(), p.next_cursor)
        }
        RecordKind::Company => {
            let p = engine.get::<Page<Company>>(req.acting(), &path, &query).await?;
            (p.items.into_iter().map(|c| (c.name, c.id)).collect(), p.next_cursor)
        }
        _ => {
            let p = engine.get::<Page<Deal>>(req.acting(), &path, &query).await?;
            (p.items.into_iter().map(|d| (d.title, d.id)).collect(), p.next_cursor)
        }
    };
    if items.is_empty() {
        return Ok(None);
    }
    let text = if page == 0 && next.is_none() {
        format!("Newest {} (tap to open):", kind.plural())
    } else {
        format!("Newest {}, page {} (tap to open):", kind.plural(), page + 1)
    };
    let mut rows: render::Rows = items
        .into_iter()
        .map(|(title, id)| vec![(format!("{} {title}", icon(kind)), Callback::Open(kind, id))])
        .collect();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(("◀ Previous".to_string(), Callback::Page { list, page: page - 1 }));
    }
    if let Some(next) = next
        && page < u16::MAX
    {
        req.ctx.lists.found_next(list, page, next);
        nav.push(("Next ▶".to_string(), Callback::Page { list, page: page + 1 }));
    }
    if !nav.is_empty() {
        rows.push(nav);
    }
    Ok(Some((text, rows)))
}

/// `/note KIND ID [TEXT]`: with text, saves at once; without, asks for it.
pub async fn note_command(req: &Req<'_>, args: &str) {
    let usage = "Usage: /note contact|company|deal|task ID [TEXT] — e.g. /note deal 12 Called, they want a demo. \
Or open a record and tap 📝 Note.";
    let mut parts = args.trim().splitn(3, char::is_whitespace);
    let kind = parts.next().and_then(|k| k.to_lowercase().parse::<RecordKind>().ok());
    let id = parts.next().and_then(super::parse_id);
    let text = parts.next().unwrap_or("").trim();
    match (kind, id) {
        (Some(kind @ (RecordKind::Contact | RecordKind::Company | RecordKind::Deal | RecordKind::Task)), Some(id)) => {
            super::forms::start_note(req, kind, id, text).await
        }
        _ => req.reply(usage),
    }
}
