//! `crm webhook key NAME`: set the key that signs requests to a webhook trigger (`key =
//! "NAME"` in the manifest; the trigger's path when it names none). Keys are sealed with the
//! installation's secret key and kept apart from step secrets: no step can read one.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Set or rotate a webhook key and print it (the only time it is shown).
    Key {
        /// The key's name, as the webhook trigger names it.
        name: String,
        /// Read the key from the first line of stdin instead of generating one.
        #[arg(long)]
        stdin: bool,
    },
    /// List the webhook keys (names only).
    List,
}

pub async fn run(config: &Config, command: WebhookCommand) -> anyhow::Result<()> {
    let db = crate::commands::serve::connect(config).await?;
    match command {
        WebhookCommand::Key { name, stdin } => {
            let given = if stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).context("reading the key from stdin")?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let vault = config.vault()?;
            let key = crm_triggers::webhook::set_key(&db, &vault, &name, given.as_deref()).await?;
            println!("{key}");
        }
        WebhookCommand::List => {
            for k in crm_store::secrets::list(&db, crm_store::secrets::Namespace::Webhook).await? {
                println!("{:<40} updated {}", k.name, k.updated_at.to_rfc3339());
            }
        }
    }
    Ok(())
}
