//! `crm token`: API tokens. The secret is printed once, on stdout alone, so
//! `TOKEN=$(crm token create --user 1)` works.

use anyhow::{Context, bail};
use clap::Subcommand;

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
        TokenCommand::Create { user, email, name } => {
            let user_id = match (user, email) {
                (Some(id), _) => id,
                (None, Some(email)) => match crm_store::users::by_email(&db, &email).await? {
                    Some(u) => u.id,
                    None => bail!("no user has the email {email}; create one with `crm user add`"),
                },
                (None, None) => bail!("give --user ID or --email ADDRESS"),
            };
            let (token, secret) = crm_store::tokens::create(&db, user_id, &name).await.context("creating the token")?;
            eprintln!("token {} for user {} (shown once; store it safely):", token.id, token.user_id);
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
                println!("{:>5}  {:<20} created {}  {state}", t.id, t.name, t.created_at.to_rfc3339());
            }
        }
        TokenCommand::Revoke { id } => {
            crm_store::tokens::revoke(&db, id).await?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
