//! `crm demo-data`: realistic sample companies, contacts, deals and tasks.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct DemoDataArgs {
    /// How many contacts; companies are a tenth of that, deals and tasks a fifth.
    #[arg(long, default_value_t = 200)]
    pub contacts: u64,
    /// Seed of the generator: the same seed gives the same names.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub async fn run(config: &Config, args: DemoDataArgs) -> anyhow::Result<()> {
    let db = crate::commands::serve::connect(config).await?;
    let companies = (args.contacts / 10).max(1);
    let bar = progress_bar(companies + args.contacts + 2 * (args.contacts / 5), "demo data");
    let mut sample = crm_store::sample::Sample::new(args.seed);
    let counts =
        crm_store::sample::load(&db, &mut sample, companies, args.contacts, true, &|done, _| bar.set_position(done))
            .await
            .context("loading demo data")?;
    bar.finish_and_clear();
    println!(
        "added {} companies, {} contacts, {} deals, {} tasks",
        counts.companies, counts.contacts, counts.deals, counts.tasks
    );
    Ok(())
}

/// A progress bar for bulk loads; hidden for small loads, where it would only flicker.
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if total < 10_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}
