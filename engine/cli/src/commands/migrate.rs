use anyhow::Context;

use crate::config::Config;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    crm_store::Db::ensure_database(&config.database_url).await.context("creating the database")?;
    let db = crm_store::Db::connect(&config.database_url, 2).await?;
    db.migrate().await.context("applying migrations")?;
    println!("migrations applied to {}", crm_store::database::redact(&config.database_url));
    Ok(())
}
