//! `crm bootstrap`: what an unattended deploy (compose, a Kubernetes job) runs before the
//! engine: creates the database if missing, applies the migrations, creates the first admin
//! on an empty database, and writes the credentials the other roles read from files (the
//! worker's credential, the bot's delegate token), each only if its file is not there yet.
//! Running it again changes nothing, so it can run on every start.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct BootstrapArgs {
    /// Where to write the first admin's API token, when this run creates the admin.
    #[arg(long)]
    pub admin_token: Option<PathBuf>,
    /// Where to write a worker credential (for CRM_WORKER_CREDENTIAL_FILE), unless present.
    #[arg(long)]
    pub worker_credential: Option<PathBuf>,
    /// Where to write the bot's delegate token (for CRM_ENGINE_TOKEN_FILE), unless present.
    #[arg(long)]
    pub bot_token: Option<PathBuf>,
}

pub async fn run(config: &Config, args: BootstrapArgs) -> anyhow::Result<()> {
    let shown = crm_store::database::redact(&config.database_url);
    crm_store::Db::ensure_database(&config.database_url)
        .await
        .with_context(|| format!("creating the database {shown}"))?;
    let db = crate::commands::serve::connect(config).await?;
    db.migrate().await.context("applying migrations")?;
    println!("migrations applied to {shown}");
    if let Some((user_id, secret)) = crate::commands::up::bootstrap_admin(&db).await? {
        match &args.admin_token {
            Some(path) => {
                write_secret(path, &secret)?;
                println!("created admin user {user_id}; its API token is in {}", path.display());
            }
            None => println!("created admin user {user_id}; its API token (shown once): {secret}"),
        }
    }
    if let Some(path) = &args.worker_credential
        && !present(path)
    {
        let (c, secret) = crm_store::worker_credentials::create(&db, "bootstrap: worker").await?;
        write_secret(path, &secret)?;
        println!("worker credential {} written to {}", c.id, path.display());
    }
    if let Some(path) = &args.bot_token
        && !present(path)
    {
        let (token_id, secret) = crate::commands::up::bot_token(&db, "bootstrap: bot").await?;
        write_secret(path, &secret)?;
        println!("bot delegate token {token_id} written to {}", path.display());
    }
    Ok(())
}

fn present(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| !s.trim().is_empty())
}

/// Writes a secret readable by this user only, replacing the file in one rename so a
/// reader never sees half of it.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
