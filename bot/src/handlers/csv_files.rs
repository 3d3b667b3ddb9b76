//! CSV files in the chat. A document sent to the bot is previewed as an import (a dry run
//! through the engine: rows, the columns read, the first rejections) with Confirm and
//! Cancel buttons, and imported on Confirm; `/export KIND` answers with the records as a
//! CSV document. Every step is an engine API call acting as the user, so the engine's role
//! check decides (importing takes a manager or an admin) and the chat can do nothing the
//! API would not allow.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crm_concepts::import::{ImportKind, ImportReport};
use teloxide::net::Download;
use teloxide::payloads::SendDocumentSetters;
use teloxide::prelude::Requester;
use teloxide::types::{Document, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId};

use super::Req;
use crate::callback::Callback;
use crate::t;
use crate::texts::Language;

/// The engine takes CSV uploads up to this size (`crm_api::routes::import::IMPORT_BODY_LIMIT`).
pub const MAX_FILE_BYTES: u32 = 8 << 20;
/// A preview not confirmed within this time is forgotten.
const PENDING_FOR: Duration = Duration::from_secs(15 * 60);
/// Files held for confirmation at once, over all chats (each at most `MAX_FILE_BYTES`).
const MAX_PENDING: usize = 16;
/// Rejected rows shown in a preview or a result.
const SHOWN_NOTES: usize = 5;

/// Files previewed and waiting for Confirm, by the number on their buttons.
#[derive(Default)]
pub struct PendingImports {
    inner: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    next: u32,
    files: HashMap<u32, PendingFile>,
}

struct PendingFile {
    chat: i64,
    tg_user: i64,
    kind: ImportKind,
    file_name: String,
    content: Vec<u8>,
    at: Instant,
}

impl PendingImports {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic elsewhere while holding the lock leaves a map that is still whole.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hold(&self, file: PendingFile) -> u32 {
        let mut p = self.lock();
        p.files.retain(|_, f| f.at.elapsed() < PENDING_FOR && !(f.chat == file.chat && f.tg_user == file.tg_user));
        while p.files.len() >= MAX_PENDING {
            let Some(oldest) = p.files.iter().min_by_key(|(_, f)| f.at).map(|(n, _)| *n) else { break };
            p.files.remove(&oldest);
        }
        p.next = p.next.wrapping_add(1);
        let nonce = p.next;
        p.files.insert(nonce, file);
        nonce
    }

    /// The file behind button `nonce`, if this user in this chat previewed it lately.
    fn take(&self, nonce: u32, chat: i64, tg_user: i64) -> Option<PendingFile> {
        let mut p = self.lock();
        match p.files.get(&nonce) {
            Some(f) if f.chat == chat && f.tg_user == tg_user && f.at.elapsed() < PENDING_FOR => p.files.remove(&nonce),
            _ => None,
        }
    }
}

/// Which records a file holds: named in its caption (`contacts`, `/import deals`), else
/// in its file name (`contacts-2026.csv`).
fn kind_of(caption: Option<&str>, file_name: &str) -> Option<ImportKind> {
    let from_words = |text: &str| text.split(|c: char| !c.is_alphanumeric()).find_map(|w| ImportKind::from_str(w).ok());
    caption.and_then(from_words).or_else(|| from_words(&file_name.to_lowercase()))
}

/// A document arrived: download it, dry-run the import, show the preview with buttons.
pub async fn received(req: &Req<'_>, document: &Document, caption: Option<&str>) {
    let file_name = document.file_name.clone().unwrap_or_else(|| "file.csv".into());
    let Some(kind) = kind_of(caption, &file_name) else {
        req.reply(&t!(req.lang, "import-which-kind", file = file_name));
        return;
    };
    if document.file.size > MAX_FILE_BYTES {
        req.reply(&t!(req.lang, "import-too-big", file = file_name, mib = MAX_FILE_BYTES >> 20));
        return;
    }
    let content = match download(req, document).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "downloading a document failed");
            req.reply(&t!(req.lang, "import-download-failed"));
            return;
        }
    };
    let path = format!("/api/import/{kind}?dry_run=true");
    let report: ImportReport = match req.ctx.engine.post_csv(req.acting(), &path, content.clone()).await {
        Ok(r) => r,
        Err(e) => {
            req.fail(&e);
            return;
        }
    };
    let text = preview(&file_name, &report, req.lang);
    if report.created + report.updated == 0 {
        req.reply(&format!("{text}\n\n{}", t!(req.lang, "import-nothing")));
        return;
    }
    let nonce = req.ctx.imports.hold(PendingFile {
        chat: req.chat.0,
        tg_user: req.tg_user,
        kind,
        file_name,
        content,
        at: Instant::now(),
    });
    let keyboard = InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::callback(t!(req.lang, "button-import"), Callback::ImportConfirm(nonce).encode()),
        InlineKeyboardButton::callback(t!(req.lang, "button-cancel"), Callback::ImportCancel(nonce).encode()),
    ]]);
    req.reply_with(&text, Some(keyboard));
}

async fn download(req: &Req<'_>, document: &Document) -> Result<Vec<u8>, String> {
    let file = req.ctx.bot.get_file(document.file.id.clone()).await.map_err(|e| e.to_string())?;
    let mut content = Vec::with_capacity(file.size as usize);
    req.ctx.bot.download_file(&file.path, &mut content).await.map_err(|e| e.to_string())?;
    Ok(content)
}

/// "12 rows: 10 created, …" in the reader's language.
fn summary(report: &ImportReport, lang: Language) -> String {
    let (created, updated) = (report.created, report.updated);
    let (skipped, rejected) = (report.skipped.len(), report.rejected.len());
    if report.dry_run {
        t!(
            lang,
            "import-summary-dry",
            rows = report.rows,
            created = created,
            updated = updated,
            skipped = skipped,
            rejected = rejected
        )
    } else {
        t!(
            lang,
            "import-summary",
            rows = report.rows,
            created = created,
            updated = updated,
            skipped = skipped,
            rejected = rejected
        )
    }
}

fn preview(file_name: &str, report: &ImportReport, lang: Language) -> String {
    let mut lines = vec![t!(
        lang,
        "import-preview",
        file = file_name,
        kind = report.kind.to_string(),
        summary = summary(report, lang)
    )];
    let columns: Vec<String> = report
        .columns
        .iter()
        .map(|c| if c.column == c.field { c.field.clone() } else { format!("{} → {}", c.column, c.field) })
        .collect();
    lines.push(t!(lang, "import-columns-read", columns = columns.join(", ")));
    if !report.ignored_columns.is_empty() {
        lines.push(t!(lang, "import-columns-ignored", columns = report.ignored_columns.join(", ")));
    }
    lines.extend(notes(report, lang));
    lines.join("\n")
}

fn notes(report: &ImportReport, lang: Language) -> Vec<String> {
    let mut lines = Vec::new();
    if !report.rejected.is_empty() {
        lines.push(t!(lang, "import-rejected"));
        for n in report.rejected.iter().take(SHOWN_NOTES) {
            lines.push(t!(lang, "import-line", line = n.line, reason = crate::text::ellipsize(&n.reason, 200)));
        }
        if report.rejected.len() > SHOWN_NOTES {
            lines.push(t!(lang, "import-more", count = report.rejected.len() - SHOWN_NOTES));
        }
    }
    if !report.skipped.is_empty() {
        let shown = report.skipped.iter().take(SHOWN_NOTES).map(|n| n.line.to_string()).collect::<Vec<_>>().join(", ");
        let more = if report.skipped.len() > SHOWN_NOTES { ", …" } else { "" };
        lines.push(t!(lang, "import-skipped", lines = format!("{shown}{more}")));
    }
    lines
}

/// Import pressed under a preview.
pub async fn confirm(req: &Req<'_>, message_id: MessageId, nonce: u32) -> Option<String> {
    let Some(file) = req.ctx.imports.take(nonce, req.chat.0, req.tg_user) else {
        return Some(t!(req.lang, "import-preview-expired"));
    };
    let importing = t!(req.lang, "import-importing", file = file.file_name.as_str());
    req.ctx.out.edit(req.chat, message_id, &importing, None, false);
    let path = format!("/api/import/{}", file.kind);
    match req.ctx.engine.post_csv::<ImportReport>(req.acting(), &path, file.content).await {
        Ok(report) => {
            let mut lines = vec![t!(
                req.lang,
                "import-done",
                file = file.file_name.as_str(),
                kind = report.kind.to_string(),
                summary = summary(&report, req.lang)
            )];
            lines.extend(notes(&report, req.lang));
            req.reply(&lines.join("\n"));
            Some(t!(req.lang, "import-done-notice"))
        }
        Err(e) => {
            req.fail(&e);
            None
        }
    }
}

/// Cancel pressed under a preview.
pub fn cancel(req: &Req<'_>, message_id: MessageId, nonce: u32) -> Option<String> {
    let file = req.ctx.imports.take(nonce, req.chat.0, req.tg_user)?;
    let text = t!(req.lang, "import-cancelled", file = file.file_name.as_str());
    req.ctx.out.edit(req.chat, message_id, &text, None, false);
    Some(t!(req.lang, "import-cancelled-notice"))
}

/// `/export contacts|companies|deals|tasks`: the records as a CSV document.
pub async fn export(req: &Req<'_>, args: &str) {
    let Ok(kind) = ImportKind::from_str(args) else {
        req.reply(&t!(req.lang, "export-usage"));
        return;
    };
    let content = match req.ctx.engine.get_bytes(req.acting(), &format!("/api/{kind}/export.csv")).await {
        Ok(c) => c,
        Err(e) => {
            req.fail(&e);
            return;
        }
    };
    // Documents go straight to Telegram, not through the text queue: one per command, and
    // the user is waiting for it.
    let records = content.iter().filter(|&&b| b == b'\n').count().saturating_sub(1);
    let file = InputFile::memory(content).file_name(format!("{kind}.csv"));
    let sent = req
        .ctx
        .bot
        .send_document(req.chat, file)
        .caption(t!(req.lang, "export-caption", kind = kind.to_string(), records = records))
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "sendDocument failed");
        req.reply(&t!(req.lang, "export-failed"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_comes_from_the_caption_else_the_file_name() {
        assert_eq!(kind_of(Some("/import deals"), "x.csv"), Some(ImportKind::Deals));
        assert_eq!(kind_of(None, "Contacts-2026.csv"), Some(ImportKind::Contacts));
        assert_eq!(kind_of(Some("here you go"), "export.csv"), None);
    }
}
