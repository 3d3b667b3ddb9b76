//! `crm user`: CRM users and their roles.

use anyhow::Context;
use clap::Subcommand;
use crm_concepts::language::Language;
use crm_concepts::records::{Actor, PageRequest};
use crm_concepts::user::{NewUser, Role, UserSettings};

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// Display name.
        #[arg(long)]
        name: String,
        /// admin (everything), manager (reads and writes records) or viewer (reads only).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        email: Option<String>,
        /// Link a Telegram account so the bot knows who is writing.
        #[arg(long)]
        telegram_id: Option<i64>,
        /// IANA time zone (e.g. Europe/Berlin); default: the installation's (CRM_TIME_ZONE).
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Change a user's own settings: time zone, reminder lead and language.
    Settings {
        #[arg(long)]
        user: i64,
        /// IANA time zone their due times are typed and shown in, e.g. Europe/Berlin.
        #[arg(long)]
        time_zone: Option<String>,
        /// Minutes before a task's due time its reminder comes (0 to 10080).
        #[arg(long)]
        remind_before: Option<i32>,
        /// The language the bot speaks to them in: en, ru, or auto (their Telegram app's).
        #[arg(long, value_parser = parse_language)]
        language: Option<LanguageChoice>,
    },
    /// List users.
    List,
    /// Create a one-time invite code; a new user redeems it in the bot with /start CODE.
    Invite(crate::commands::invite::InviteArgs),
    /// Link (or with --unlink, unlink) a Telegram account to a user.
    LinkTelegram {
        #[arg(long)]
        user: i64,
        #[arg(long, required_unless_present = "unlink")]
        telegram_id: Option<i64>,
        #[arg(long)]
        unlink: bool,
    },
}

/// `auto` clears the setting: the bot follows the Telegram app's language.
#[derive(Debug, Clone, Copy)]
pub struct LanguageChoice(Option<Language>);

fn parse_language(s: &str) -> Result<LanguageChoice, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(LanguageChoice(None));
    }
    s.parse::<Language>().map(|l| LanguageChoice(Some(l))).map_err(|e| format!("{e} (or auto)"))
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

pub async fn run(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let db = crate::commands::serve::connect(config).await?;
    match command {
        UserCommand::Add { name, role, email, telegram_id, time_zone } => {
            let user = crm_store::users::create(
                &db,
                &Actor::system(),
                NewUser { name, email, role, telegram_user_id: telegram_id, time_zone },
            )
            .await
            .context("creating the user")?;
            println!("created user {} ({}) {} — time zone {}", user.id, user.role, user.name, user.time_zone);
            eprintln!("get an API token: crm token create --user {}", user.id);
        }
        UserCommand::Settings { user, time_zone, remind_before, language } => {
            let settings =
                UserSettings { time_zone, remind_before_minutes: remind_before, language: language.map(|l| l.0) };
            let user = crm_store::users::set_settings(&db, &Actor::system(), user, &settings)
                .await
                .context("changing the settings")?;
            println!(
                "user {} ({}): time zone {}, reminders {} min before due, language {}",
                user.id,
                user.name,
                user.time_zone,
                user.remind_before_minutes,
                user.language.map_or("auto (the Telegram app's)", Language::code)
            );
        }
        UserCommand::List => {
            let mut page = PageRequest { limit: Some(PageRequest::MAX_LIMIT), ..PageRequest::default() };
            loop {
                let users = crm_store::users::list(&db, &page).await?;
                for u in &users.items {
                    println!(
                        "{:>5}  {:<8} {:<30} {:<30} {:<20} {}",
                        u.id,
                        u.role.as_str(),
                        u.name,
                        u.email.as_deref().unwrap_or("-"),
                        u.time_zone,
                        u.telegram_user_id.map(|t| format!("telegram {t}")).unwrap_or_default()
                    );
                }
                match users.next_cursor {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
        }
        UserCommand::Invite(args) => crate::commands::invite::run(&db, args).await?,
        UserCommand::LinkTelegram { user, telegram_id, unlink } => {
            let tg = if unlink { None } else { telegram_id };
            let u = crm_store::users::link_telegram(&db, &Actor::system(), user, tg).await?;
            match u.telegram_user_id {
                Some(t) => println!("user {} is linked to Telegram user {t}", u.id),
                None => println!("user {} has no linked Telegram user", u.id),
            }
        }
    }
    Ok(())
}
