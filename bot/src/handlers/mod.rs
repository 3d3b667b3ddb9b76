//! Turning one Telegram update into engine calls and replies. Updates of one chat arrive
//! here one at a time (see `updates`), so a chat's dialogue is never raced by itself.

mod access;
mod approvals;
mod cards;
mod csv_files;
mod custom_fields;
mod deal_view;
mod deletion;
mod forms;
mod message_buttons;
mod pipeline;
mod records;
mod runs;
mod schedules;
mod settings;
mod tasks;
mod web;

use std::sync::Arc;

use crm_concepts::user::User;
use teloxide::Bot;
use teloxide::payloads::AnswerCallbackQuerySetters;
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, ChatId, InlineKeyboardMarkup, Message, MessageId, Update, UpdateKind};

pub use access::Identity;
pub use csv_files::PendingImports;
pub use runs::WorkflowCatalog;

use crate::callback::Callback;
use crate::command::{self, Parsed};
use crate::dialogue::Dialogues;
use crate::engine::{Acting, EngineClient, EngineError};
use crate::outbound::Outbound;
use crate::t;
use crate::texts::{self, Language};

/// Everything a handler needs; shared by all chats.
pub struct Ctx {
    pub engine: EngineClient,
    pub out: Outbound,
    pub bot: Bot,
    pub username: String,
    pub identity: Identity,
    pub dialogues: Dialogues,
    pub lists: crate::list_pages::ListPages,
    /// CSV files previewed in a chat and waiting for their Import button
    pub imports: PendingImports,
    pub workflows: WorkflowCatalog,
    pub default_currency: String,
    /// group chats where the bot answers; it answers in private chats everywhere else
    pub allowed_groups: std::collections::HashSet<i64>,
    /// each person's Telegram app language as last seen, for what the bot writes unasked
    pub app_languages: crate::app_languages::AppLanguages,
}

/// The built-in commands: (name, arguments). `/help` and `setMyCommands` both come from this
/// list, each described in the reader's language by its `cmd-NAME` text (`bot/locales`).
pub const BUILTIN: &[(&str, &str)] = &[
    ("help", ""),
    ("find", "TEXT"),
    ("contacts", "[TEXT]"),
    ("companies", "[TEXT]"),
    ("deals", "[TEXT]"),
    ("addcontact", ""),
    ("addcompany", ""),
    ("editcontact", "ID"),
    ("editcompany", "ID"),
    ("adddeal", ""),
    ("editdeal", "ID"),
    ("pipeline", ""),
    ("tasks", ""),
    ("today", ""),
    ("addtask", "[TITLE]"),
    ("note", "contact|company|deal ID [TEXT]"),
    ("delete", "contact|company|deal|task ID"),
    ("export", "contacts|companies|deals|tasks"),
    ("run", "WORKFLOW [ARGS]"),
    ("runs", ""),
    ("approvals", ""),
    ("schedules", ""),
    ("settings", "[zone NAME | remind MINUTES | language en|ru|auto]"),
    ("invite", "admin|manager|viewer"),
    ("web", ""),
    ("cancel", ""),
    ("start", "[CODE]"),
];

/// One incoming message or button press from a known CRM user.
pub struct Req<'a> {
    pub ctx: &'a Ctx,
    pub chat: ChatId,
    /// a one-to-one chat with the user (not an allowed group)
    pub private: bool,
    pub tg_user: i64,
    pub user: User,
    /// how the user writes numbers, from Telegram's `language_code`
    pub locale: crm_concepts::money::Locale,
    /// the language the bot speaks to them in: their setting, else `telegram_language`
    pub lang: Language,
    /// their Telegram app's language, when the bot speaks it
    pub telegram_language: Option<Language>,
}

impl Req<'_> {
    pub fn acting(&self) -> Acting {
        Some(self.user.id)
    }
    /// The zone the user reads and types times in.
    pub fn zone(&self) -> chrono_tz::Tz {
        self.user.zone()
    }

    pub fn reply(&self, text: &str) {
        self.ctx.out.send(self.chat, text, None);
    }

    pub fn reply_with(&self, text: &str, keyboard: Option<InlineKeyboardMarkup>) {
        self.ctx.out.send(self.chat, text, keyboard);
    }

    pub fn fail(&self, e: &EngineError) {
        log_engine_error(e);
        self.reply(&e.for_chat(self.lang));
    }
}

pub fn log_engine_error(e: &EngineError) {
    match e {
        EngineError::Api { status, .. } if *status < 500 => tracing::debug!(error = %e, "engine refused"),
        _ => tracing::warn!(error = %e, "engine call failed"),
    }
}

pub async fn handle_update(ctx: Arc<Ctx>, update: Update) {
    // The bot speaks for a CRM user; in a chat others read, what it says for one (a
    // record, an invite code) is told to all. Only private chats and groups the operator
    // allowed get answers.
    if let Some(chat) = update.chat()
        && !access::chat_allowed(&ctx, chat)
    {
        access::refuse_chat(&ctx, update).await;
        return;
    }
    match update.kind {
        UpdateKind::Message(m) => on_message(&ctx, m).await,
        UpdateKind::EditedMessage(m) => on_edited(&ctx, m).await,
        UpdateKind::CallbackQuery(q) => on_callback(&ctx, q).await,
        _ => {}
    }
}

fn telegram_id(user: &teloxide::types::User) -> i64 {
    i64::try_from(user.id.0).unwrap_or(i64::MAX)
}

async fn on_message(ctx: &Ctx, m: Message) {
    let Some(from) = m.from.as_ref() else { return };
    if from.is_bot {
        return;
    }
    let tg = telegram_id(from);
    let chat = m.chat.id;
    let text = m.text().unwrap_or_default();
    let parsed = command::parse(text, &ctx.username);
    if matches!(parsed, Parsed::OtherBot) {
        return;
    }
    // /start works before the user is known: it is how an invite is redeemed.
    if let Parsed::Command(c) = &parsed
        && c.name == "start"
    {
        access::start(ctx, chat, from, c.args).await;
        return;
    }
    let user = match ctx.identity.lookup(tg).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            access::refuse(ctx, chat, from);
            return;
        }
        Err(e) => {
            log_engine_error(&e);
            ctx.out.send(chat, &e.for_chat(texts::language_for(None, from.language_code.as_deref())), None);
            return;
        }
    };
    let locale = locale_of(Some(from));
    let (lang, telegram_language) = languages(&user, from);
    ctx.app_languages.remember(user.id, from.language_code.as_deref());
    let req = Req { ctx, chat, private: m.chat.is_private(), tg_user: tg, user, locale, lang, telegram_language };
    if let Some(document) = m.document() {
        csv_files::received(&req, document, m.caption()).await;
        return;
    }
    if m.text().is_none() {
        req.reply(&t!(req.lang, "text-only"));
        return;
    }
    match parsed {
        Parsed::Command(c) => {
            if c.name != "cancel"
                && let Some(d) = ctx.dialogues.end(chat.0, tg)
            {
                req.reply(&t!(req.lang, "dialogue-left", dialogue = d.kind.describe(req.lang)));
            }
            dispatch_command(&req, &c.name, c.args).await;
        }
        Parsed::Malformed => req.reply(&t!(req.lang, "malformed-command")),
        Parsed::Text(text) => match ctx.dialogues.get(chat.0, tg) {
            Some(d) => forms::answer(&req, d, text).await,
            None => req.reply(&t!(req.lang, "plain-text-hint")),
        },
        Parsed::OtherBot => {}
    }
}

async fn dispatch_command(req: &Req<'_>, name: &str, args: &str) {
    match name {
        "help" => req.reply(&help_text(req.ctx, req.lang)),
        "cancel" => match req.ctx.dialogues.end(req.chat.0, req.tg_user) {
            Some(d) => req.reply(&t!(req.lang, "dialogue-cancelled", dialogue = d.kind.describe(req.lang))),
            None => req.reply(&t!(req.lang, "nothing-to-cancel")),
        },
        "find" => records::find(req, args, None).await,
        "contacts" => records::list(req, crm_concepts::records::RecordKind::Contact, args).await,
        "companies" => records::list(req, crm_concepts::records::RecordKind::Company, args).await,
        "deals" => records::list(req, crm_concepts::records::RecordKind::Deal, args).await,
        "addcontact" => forms::start(req, crate::dialogue::FormKind::AddContact).await,
        "addcompany" => forms::start(req, crate::dialogue::FormKind::AddCompany).await,
        "adddeal" => forms::start(req, crate::dialogue::FormKind::AddDeal).await,
        "editcontact" | "editcompany" | "editdeal" => match parse_id(args) {
            Some(id) => {
                let kind = match name {
                    "editcontact" => crate::dialogue::FormKind::EditContact(id),
                    "editcompany" => crate::dialogue::FormKind::EditCompany(id),
                    _ => crate::dialogue::FormKind::EditDeal(id),
                };
                forms::start(req, kind).await
            }
            None => req.reply(&t!(req.lang, "edit-usage", command = name)),
        },
        "addtask" => forms::start_task(req, args).await,
        "note" => records::note_command(req, args).await,
        "delete" => deletion::command(req, args).await,
        "export" => csv_files::export(req, args).await,
        "pipeline" => pipeline::overview(req, args).await,
        "tasks" => tasks::mine(req, false).await,
        "today" => tasks::mine(req, true).await,
        "run" => runs::run_command(req, args).await,
        "runs" => runs::recent(req).await,
        "approvals" => approvals::mine(req).await,
        "schedules" => schedules::list(req).await,
        "settings" => settings::settings(req, args).await,
        "invite" => access::invite(req, args).await,
        "web" => web::link(req).await,
        other => {
            if !runs::workflow_command(req, other, args).await {
                req.reply(&t!(req.lang, "unknown-command", command = crate::text::ellipsize(other, 40)));
            }
        }
    }
}

pub fn parse_id(args: &str) -> Option<i64> {
    args.trim().trim_start_matches('#').parse::<i64>().ok().filter(|&id| id > 0)
}

/// The language to speak to `user` in, and their Telegram app's (when the bot speaks it).
fn languages(user: &User, from: &teloxide::types::User) -> (Language, Option<Language>) {
    let app = from.language_code.as_deref().and_then(Language::from_tag);
    (texts::language_for(user.language, from.language_code.as_deref()), app)
}

/// Telegram's `language_code` decides how amounts are read (`1 500,50` in Russian).
fn locale_of(user: Option<&teloxide::types::User>) -> crm_concepts::money::Locale {
    user.and_then(|u| u.language_code.as_deref())
        .map_or_else(Default::default, crm_concepts::money::Locale::from_language)
}

pub fn help_text(ctx: &Ctx, lang: Language) -> String {
    let mut lines = vec![t!(lang, "help-commands")];
    for (name, args) in BUILTIN {
        let usage = if args.is_empty() { format!("/{name}") } else { format!("/{name} {args}") };
        lines.push(format!("{usage} — {}", texts::command_description(lang, name)));
    }
    let workflows = ctx.workflows.commands();
    if !workflows.is_empty() {
        lines.push(String::new());
        lines.push(t!(lang, "help-workflows"));
        for w in workflows {
            lines.push(w.usage_line());
        }
    }
    lines.push(String::new());
    lines.push(t!(lang, "help-dialogue-hint"));
    lines.push(t!(lang, "help-import-hint"));
    lines.join("\n")
}

async fn on_edited(ctx: &Ctx, m: Message) {
    let Some(from) = m.from.as_ref() else { return };
    let tg = telegram_id(from);
    // Acting on an edit could repeat or half-repeat a command; only known users hear why.
    if let Ok(Some(user)) = ctx.identity.lookup(tg).await {
        let (lang, _) = languages(&user, from);
        ctx.out.send(m.chat.id, &t!(lang, "edits-ignored"), None);
    }
}

/// The message a button was under, if Telegram still has it.
fn button_message(q: &CallbackQuery) -> Option<(ChatId, MessageId)> {
    q.message.as_ref().map(|m| (m.chat().id, m.id()))
}

async fn on_callback(ctx: &Ctx, q: CallbackQuery) {
    let answer = callback_answer(ctx, &q).await;
    // Every press is answered, or the user's client keeps spinning.
    let mut req = ctx.bot.answer_callback_query(q.id.clone());
    if let Some(text) = answer {
        req = req.text(crate::text::ellipsize(&text, 190));
    }
    if let Err(e) = req.await {
        tracing::warn!(error = %e, "answerCallbackQuery failed");
    }
}

/// Handles a press; returns the short notice shown to the user.
async fn callback_answer(ctx: &Ctx, q: &CallbackQuery) -> Option<String> {
    let tg = telegram_id(&q.from);
    let app = texts::language_for(None, q.from.language_code.as_deref());
    let Some((chat, message_id)) = button_message(q) else {
        return Some(t!(app, "button-too-old"));
    };
    let user = match ctx.identity.lookup(tg).await {
        Ok(Some(user)) => user,
        Ok(None) => return Some(t!(app, "button-unknown-user")),
        Err(e) => {
            log_engine_error(&e);
            return Some(e.for_chat(app));
        }
    };
    let (lang, telegram_language) = languages(&user, &q.from);
    ctx.app_languages.remember(user.id, q.from.language_code.as_deref());
    let Some(cb) = q.data.as_deref().and_then(Callback::parse) else {
        return Some(t!(lang, "button-expired"));
    };
    let private = q.message.as_ref().is_some_and(|m| m.chat().is_private());
    let locale = locale_of(Some(&q.from));
    let req = Req { ctx, chat, private, tg_user: tg, user, locale, lang, telegram_language };
    match cb {
        Callback::Open(kind, id) => cards::show(&req, kind, id).await,
        Callback::MoveMenu(deal) => pipeline::move_menu(&req, deal).await,
        Callback::Move { deal, stage } => pipeline::move_deal(&req, message_id, deal, stage).await,
        Callback::Stage(stage) => pipeline::stage(&req, stage).await,
        Callback::Page { list, page } => records::turn_page(&req, message_id, list, page).await,
        Callback::TaskDone(task) => tasks::done(&req, message_id, task).await,
        Callback::Note(kind, id) => {
            forms::start_note(&req, kind, id, "").await;
            None
        }
        Callback::Edit(kind, id) => {
            let form = match kind {
                crm_concepts::records::RecordKind::Contact => crate::dialogue::FormKind::EditContact(id),
                crm_concepts::records::RecordKind::Company => crate::dialogue::FormKind::EditCompany(id),
                crm_concepts::records::RecordKind::Deal => crate::dialogue::FormKind::EditDeal(id),
                _ => return Some(t!(req.lang, "edit-only-records")),
            };
            forms::start(&req, form).await;
            None
        }
        Callback::Delete(kind, id) => deletion::ask(&req, kind, id).await,
        Callback::DeleteAnswer { kind, id, asker, delete } => {
            deletion::answer(&req, message_id, kind, id, asker, delete).await
        }
        Callback::Choice { nonce, choice } => forms::choose(&req, nonce, choice).await,
        Callback::ImportConfirm(n) => csv_files::confirm(&req, message_id, n).await,
        Callback::ImportCancel(n) => {
            csv_files::cancel(&req, message_id, n).or_else(|| Some(t!(req.lang, "import-preview-expired")))
        }
        Callback::Decide { approval, approve } => approvals::decide(&req, approval, approve).await,
        Callback::Retry(run) => runs::retry(&req, run).await,
        Callback::Press { notification, button } => {
            let text = q.message.as_ref().and_then(|m| m.regular_message()).and_then(|m| m.text());
            message_buttons::press(&req, message_id, text, notification, button).await
        }
    }
}
