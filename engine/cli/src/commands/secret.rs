//! `crm secret set|list|rm`: the secrets steps read once granted `secret:NAME`. Values are
//! sealed with the installation's key before they reach Postgres and are never printed back;
//! `list` shows names and how often steps read each.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use clap::Subcommand;
use crm_store::secrets::{self, Namespace};

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Set or replace a secret; the value is read from the first line of stdin (so it stays
    /// out of the shell history): `crm secret set STRIPE_KEY < key.txt`.
    Set {
        /// Letters, digits, '-', '.' or '_'.
        name: String,
    },
    /// Every secret's name, when it changed, and how often steps read it (never values).
    List,
    /// Remove a secret.
    Rm { name: String },
}

pub async fn run(config: &Config, command: SecretCommand) -> anyhow::Result<()> {
    let db = crate::commands::serve::connect(config).await?;
    match command {
        SecretCommand::Set { name } => {
            if std::io::stdin().is_terminal() {
                eprintln!("value for {name} (one line, not echoed to any log):");
            }
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the value from stdin")?;
            let value = line.trim_end_matches(['\r', '\n']);
            let vault = config.vault()?;
            secrets::put(&db, &vault, Namespace::Step, &name, value).await?;
            eprintln!("secret {name} set (sealed with key {})", vault.id());
        }
        SecretCommand::List => {
            for s in secrets::list(&db, Namespace::Step).await? {
                let last = s.last_read_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into());
                println!("{:<40} updated {}  reads {}  last read {last}", s.name, s.updated_at.to_rfc3339(), s.reads);
            }
        }
        SecretCommand::Rm { name } => {
            if !secrets::remove(&db, Namespace::Step, &name).await? {
                bail!("no secret named {name}");
            }
            eprintln!("secret {name} removed");
        }
    }
    Ok(())
}
