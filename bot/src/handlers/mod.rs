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
}

/// The built-in commands: (name, arguments, description). `/help` and `setMyCommands`
/// both come from this list.
pub const BUILTIN: &[(&str, &str, &str)] = &[
    ("help", "", "List the commands"),
    ("find", "TEXT", "Search contacts, companies and deals"),
    ("contacts", "[TEXT]", "List or search contacts"),
    ("companies", "[TEXT]", "List or search companies"),
    ("deals", "[TEXT]", "List or search deals"),
    ("addcontact", "", "Add a contact, field by field"),
    ("addcompany", "", "Add a company, field by field"),
    ("editcontact", "ID", "Change a contact"),
    ("editcompany", "ID", "Change a company"),
    ("adddeal", "", "Add a deal, field by field"),
    ("editdeal", "ID", "Change a deal"),
    ("pipeline", "", "Deals by stage; move them with buttons"),
    ("tasks", "", "My open tasks"),
    ("today", "", "My tasks due today"),
    ("addtask", "[TITLE]", "Add a task for me"),
    ("note", "contact|company|deal ID [TEXT]", "Add a note to a record"),
    ("delete", "contact|company|deal|task ID", "Delete a record, after you confirm"),
    ("export", "contacts|companies|deals|tasks", "Download records as a CSV file"),
    ("run", "WORKFLOW [ARGS]", "Run a workflow"),
    ("runs", "", "Recent workflow runs and their status"),
    ("approvals", "", "Approvals waiting for my decision, with their buttons"),
    ("schedules", "", "Scheduled workflows and when they run next"),
    ("settings", "[zone NAME | remind MINUTES]", "My time zone and task reminders"),
    ("invite", "admin|manager|viewer", "Create a one-time invite (admins)"),
    ("web", "", "A one-time link that signs you in to the web app"),
    ("cancel", "", "Stop the current dialogue"),
    ("start", "[CODE]", "Start, or redeem an invite code"),
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
        self.reply(&e.for_chat());
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
            access::refuse(ctx, chat, tg);
            return;
        }
        Err(e) => {
            log_engine_error(&e);
            ctx.out.send(chat, &e.for_chat(), None);
            return;
        }
    };
    let locale = locale_of(Some(from));
    let req = Req { ctx, chat, private: m.chat.is_private(), tg_user: tg, user, locale };
    if let Some(document) = m.document() {
        csv_files::received(&req, document, m.caption()).await;
        return;
    }
    if m.text().is_none() {
        req.reply("I understand text messages only (and CSV files to import). Send /help for the commands.");
        return;
    }
    match parsed {
        Parsed::Command(c) => {
            if c.name != "cancel"
                && let Some(d) = ctx.dialogues.end(chat.0, tg)
            {
                req.reply(&format!("(Left {} — nothing was saved.)", d.kind.describe()));
            }
            dispatch_command(&req, &c.name, c.args).await;
        }
        Parsed::Malformed => req.reply("That does not look like a command. Send /help for the list."),
        Parsed::Text(t) => match ctx.dialogues.get(chat.0, tg) {
            Some(d) => forms::answer(&req, d, t).await,
            None => req.reply("Send /help for the commands, or /find TEXT to search the CRM."),
        },
        Parsed::OtherBot => {}
    }
}

async fn dispatch_command(req: &Req<'_>, name: &str, args: &str) {
    match name {
        "help" => req.reply(&help_text(req.ctx)),
        "cancel" => match req.ctx.dialogues.end(req.chat.0, req.tg_user) {
            Some(d) => req.reply(&format!("Cancelled {}. Nothing was saved.", d.kind.describe())),
            None => req.reply("There is nothing to cancel."),
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
            None => req.reply(&format!("Usage: /{name} ID — the number shown on the record, e.g. /{name} 42")),
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
                req.reply(&format!("Unknown command /{}. Send /help for the list.", crate::text::ellipsize(other, 40)));
            }
        }
    }
}

pub fn parse_id(args: &str) -> Option<i64> {
    args.trim().trim_start_matches('#').parse::<i64>().ok().filter(|&id| id > 0)
}

/// Telegram's `language_code` decides how amounts are read (`1 500,50` in Russian).
fn locale_of(user: Option<&teloxide::types::User>) -> crm_concepts::money::Locale {
    user.and_then(|u| u.language_code.as_deref())
        .map_or_else(Default::default, crm_concepts::money::Locale::from_language)
}

pub fn help_text(ctx: &Ctx) -> String {
    let mut lines = vec!["Commands:".to_string()];
    for (name, args, desc) in BUILTIN {
        let usage = if args.is_empty() { format!("/{name}") } else { format!("/{name} {args}") };
        lines.push(format!("{usage} — {desc}"));
    }
    let workflows = ctx.workflows.commands();
    if !workflows.is_empty() {
        lines.push(String::new());
        lines.push("Workflows:".into());
        for w in workflows {
            lines.push(w.usage_line());
        }
    }
    lines.push(String::new());
    lines.push("In a dialogue, send - to skip an optional field and /cancel to stop.".into());
    lines.push(
        "To import, send a CSV file with the caption contacts, companies, deals or tasks: you see a preview first."
            .into(),
    );
    lines.join("\n")
}

async fn on_edited(ctx: &Ctx, m: Message) {
    let Some(from) = m.from.as_ref() else { return };
    let tg = telegram_id(from);
    // Acting on an edit could repeat or half-repeat a command; only known users hear why.
    if let Ok(Some(_)) = ctx.identity.lookup(tg).await {
        ctx.out.send(
            m.chat.id,
            "I saw you edited a message. Edits are not acted on — please send the corrected message again.",
            None,
        );
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
    let Some((chat, message_id)) = button_message(q) else {
        return Some("This button is too old; please run the command again.".into());
    };
    let user = match ctx.identity.lookup(tg).await {
        Ok(Some(user)) => user,
        Ok(None) => return Some("You are not registered with this CRM.".into()),
        Err(e) => {
            log_engine_error(&e);
            return Some(e.for_chat());
        }
    };
    let Some(cb) = q.data.as_deref().and_then(Callback::parse) else {
        return Some("This button has expired; please run the command again.".into());
    };
    let private = q.message.as_ref().is_some_and(|m| m.chat().is_private());
    let req = Req { ctx, chat, private, tg_user: tg, user, locale: locale_of(Some(&q.from)) };
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
                _ => return Some("Only contacts, companies and deals can be edited here.".into()),
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
            csv_files::cancel(&req, message_id, n).or_else(|| Some("This preview has expired.".into()))
        }
        Callback::Decide { approval, approve } => approvals::decide(&req, approval, approve).await,
        Callback::Retry(run) => runs::retry(&req, run).await,
        Callback::Press { notification, button } => {
            let text = q.message.as_ref().and_then(|m| m.regular_message()).and_then(|m| m.text());
            message_buttons::press(&req, message_id, text, notification, button).await
        }
    }
}
