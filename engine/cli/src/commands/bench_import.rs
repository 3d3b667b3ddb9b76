//! `crm bench import`: a generated CSV file of contacts through `crm_store::import` (the
//! code path of `crm import` and `POST /api/import/contacts`) into a fresh database (goal:
//! 100,000 contacts at ≥ 20,000 rows/s). Afterwards every contact must be there once, with
//! its activity entry and outbox event, and findable by search.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, ensure};
use crm_concepts::import::{ImportKind, ImportOptions};
use crm_concepts::records::{Actor, RecordKind};
use crm_store::Db;
use crm_store::database::with_database;
use crm_store::sample::Sample;
use serde_json::json;

use crate::commands::demo_data::progress_bar;
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct ImportBenchArgs {
    /// Contacts in the generated file.
    #[arg(long, default_value_t = 100_000)]
    pub contacts: u64,
    /// Scratch database (on the server of CRM_DATABASE_URL), dropped and recreated.
    #[arg(long, default_value = "crm_bench_import")]
    pub database: String,
    /// Keep the scratch database afterwards (for a look with psql).
    #[arg(long)]
    pub keep: bool,
    /// Seed of the name generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

pub async fn run(config: &Config, args: ImportBenchArgs) -> anyhow::Result<()> {
    ensure!(args.contacts > 0, "--contacts must be at least 1");
    let admin_url = with_database(&config.database_url, "postgres");
    let url = Db::create_scratch(&admin_url, &args.database).await.context("creating the scratch database")?;
    let db = Db::connect(&url, 4).await?;
    let result = measure(&db, &args).await;
    db.pool.close().await;
    if !args.keep {
        Db::drop_scratch(&admin_url, &args.database).await;
    }
    result
}

async fn measure(db: &Db, args: &ImportBenchArgs) -> anyhow::Result<()> {
    let mut sample = Sample::new(args.seed);
    let mut csv = String::with_capacity(args.contacts as usize * 80);
    csv.push_str("name,email,phone,tags\n");
    let mut names = Vec::new();
    for i in 0..args.contacts {
        let name = sample.person_name();
        let email = format!("{}.{i}@example.com", name.to_lowercase().replace(' ', "."));
        let _ = writeln!(csv, "{name},{email},{},{}", sample.phone(), if i % 3 == 0 { "imported; vip" } else { "" });
        if i % (args.contacts / 20).max(1) == 0 {
            names.push((name, email));
        }
    }
    let options = ImportOptions { default_currency: "USD".into(), ..ImportOptions::default() };
    let bar = progress_bar(args.contacts, "importing contacts");
    let started = Instant::now();
    let report =
        crm_store::import::import(db, &Actor::system(), ImportKind::Contacts, csv.as_bytes(), &options, &|done| {
            bar.set_position(done);
        })
        .await
        .context("importing the generated contacts")?;
    let took = started.elapsed();
    bar.finish_and_clear();
    ensure!(
        report.created == args.contacts && report.rejected.is_empty() && report.skipped.is_empty(),
        "the import did not create every contact: {}",
        report.summary()
    );

    // Correct, not only fast: each contact once, logged and announced, and findable.
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db.pool).await };
    let contacts = count("SELECT count(*) FROM contacts").await?;
    let activity = count("SELECT count(*) FROM activity WHERE record_kind = 'contact' AND action = 'created'").await?;
    let events = count("SELECT count(*) FROM outbox WHERE record_kind = 'contact' AND action = 'created'").await?;
    let expected = i64::try_from(args.contacts)?;
    ensure!(
        (contacts, activity, events) == (expected, expected, expected),
        "expected {expected} contacts, activity entries and events; found {contacts}, {activity}, {events}"
    );
    for (name, email) in &names {
        let hits = crm_store::search::search(db, name, &[RecordKind::Contact], 50).await?;
        let by_email = crm_store::search::search(db, email, &[RecordKind::Contact], 5).await?;
        ensure!(
            hits.iter().any(|h| h.title == *name) && by_email.iter().any(|h| h.subtitle.as_deref() == Some(email)),
            "search does not find the imported contact {name} <{email}>"
        );
    }

    let rate = args.contacts as f64 / took.as_secs_f64();
    println!(
        "import of {} contacts: {:.2} s, {:.0} rows/s ({} batches of {}); search finds the {} contacts checked",
        args.contacts,
        took.as_secs_f64(),
        rate,
        args.contacts.div_ceil(crm_store::import::BATCH_ROWS as u64),
        crm_store::import::BATCH_ROWS,
        names.len()
    );
    println!(
        "{}",
        json!({"bench": "import", "contacts": args.contacts, "seconds": took.as_secs_f64(), "rows_per_s": rate})
    );
    Ok(())
}
