//! `crm token`: API tokens. The secret is printed once, on stdout alone, so
//! `TOKEN=$(crm token create --user 1)` works.

use anyhow::{Context, bail};
use clap::Subcommand;

use crm_concepts::user::TokenScope;

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for a user and print its secret (shown only this once).
    Create {
        /// The user's id.
        #[arg(long, conflicts_with = "email", required_unless_present = "email")]
        user: Option<i64>,
        /// The user's email, instead of the id.
        #[arg(long)]
        email: Option<String>,
        /// What the token is for, e.g. "laptop" or "bot".
        #[arg(long, default_value = "cli")]
        name: String,
        /// A delegate token, for the bot: it acts for the CRM user each request names
        /// (X-Crm-Acting-User) with that user's role, and can never deploy, manage secrets,
        /// webhook keys, users or roles.
        #[arg(long)]
        delegate: bool,
        /// Days until the token stops working (default: until revoked).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// List a user's tokens (never their secrets).
    List {
        #[arg(long)]
        user: i64,
    },
    /// Revoke a token by its id.
    Revoke { id: i64 },
}

pub async fn run(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let db = crate::commands::serve::connect(config).await?;
    match command {
        TokenCommand::Create { user, email, name, delegate, expires_in_days } => {
            let user_id = match (user, email) {
                (Some(id), _) => id,
                (None, Some(email)) => match crm_store::users::by_email(&db, &email).await? {
                    Some(u) => u.id,
                    None => bail!("no user has the email {email}; create one with `crm user add`"),
                },
                (None, None) => bail!("give --user ID or --email ADDRESS"),
            };
            let new = crm_store::tokens::NewToken {
                name: &name,
                scope: if delegate { TokenScope::Delegate } else { TokenScope::Full },
                expires_at: expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d))),
            };
            let (token, secret) =
                crm_store::tokens::create_with(&db, user_id, &new).await.context("creating the token")?;
            let until = token.expires_at.map(|at| format!(", expires {}", at.to_rfc3339())).unwrap_or_default();
            eprintln!(
                "{} token {} for user {}{until} (shown once; store it safely):",
                token.scope.as_str(),
                token.id,
                token.user_id
            );
            println!("{secret}");
        }
        TokenCommand::List { user } => {
            for t in crm_store::tokens::list(&db, user).await? {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => format!(
                        "last used {}",
                        t.last_used_at.map(|a| a.to_rfc3339()).unwrap_or_else(|| "never".into())
                    ),
                };
                let expiry = t.expires_at.map(|at| format!("  expires {}", at.to_rfc3339())).unwrap_or_default();
                println!(
                    "{:>5}  {:<20} {:<8} created {}  {state}{expiry}",
                    t.id,
                    t.name,
                    t.scope.as_str(),
                    t.created_at.to_rfc3339()
                );
            }
        }
        TokenCommand::Revoke { id } => {
            crm_store::tokens::revoke(&db, id).await?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
