//! `crm user`: CRM users and their roles.

use anyhow::Context;
use clap::Subcommand;
use crm_concepts::records::{Actor, PageRequest};
use crm_concepts::user::{NewUser, Role};

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

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

pub async fn run(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let db = crate::commands::serve::connect(config).await?;
    match command {
        UserCommand::Add { name, role, email, telegram_id } => {
            let user = crm_store::users::create(
                &db,
                &Actor::system(),
                NewUser { name, email, role, telegram_user_id: telegram_id },
            )
            .await
            .context("creating the user")?;
            println!("created user {} ({}) {}", user.id, user.role, user.name);
            eprintln!("get an API token: crm token create --user {}", user.id);
        }
        UserCommand::List => {
            let mut page = PageRequest { limit: Some(PageRequest::MAX_LIMIT), ..PageRequest::default() };
            loop {
                let users = crm_store::users::list(&db, &page).await?;
                for u in &users.items {
                    println!(
                        "{:>5}  {:<8} {:<30} {:<30} {}",
                        u.id,
                        u.role.as_str(),
                        u.name,
                        u.email.as_deref().unwrap_or("-"),
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
