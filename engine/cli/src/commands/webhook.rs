//! `crm webhook secret NAME`: set the secret that signs requests to a webhook trigger
//! (`secret = "NAME"` in the manifest; the trigger's path when it names none).

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Set or rotate a webhook secret and print it (the only time it is shown).
    Secret {
        /// The secret's name, as the webhook trigger names it.
        name: String,
        /// Read the secret from the first line of stdin instead of generating one.
        #[arg(long)]
        stdin: bool,
    },
}

pub async fn run(config: &Config, command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Secret { name, stdin } => {
            let given = if stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).context("reading the secret from stdin")?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let db = crm_store::Db::connect(&config.database_url, 2).await?;
            let secret = crm_triggers::webhook::set_secret(&db.pool, &name, given.as_deref()).await?;
            println!("{secret}");
            Ok(())
        }
    }
}
