//! `crm import contacts|companies|deals|tasks FILE.csv`: a CSV file into the CRM in batches
//! of 5,000 rows, each one transaction (`crm_store::import`), straight to Postgres like the
//! other operator commands; the changes are the system's in the activity log.

use std::path::PathBuf;

use anyhow::{Context, bail};
use crm_concepts::import::{ImportKind, ImportOptions, ImportReport, OnDuplicate};
use crm_concepts::records::Actor;
use crm_store::import::ImportError;

use crate::commands::demo_data::progress_bar;
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// contacts, companies, deals or tasks
    pub kind: ImportKind,
    /// The CSV file (UTF-8, a header row first); `-` reads standard input.
    pub file: PathBuf,
    /// COLUMN=FIELD: read the file's COLUMN as the record's FIELD (repeatable).
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    pub map: Vec<String>,
    /// Check every row and print the report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A row whose record exists (contacts by email, companies by domain or name): skip it
    /// or update the record from it.
    #[arg(long, default_value = "skip")]
    pub on_duplicate: OnDuplicate,
}

pub async fn run(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    let bytes = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading standard input")?;
        buf
    } else {
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?
    };
    let map = ImportOptions::parse_map(args.map.iter().map(String::as_str)).map_err(anyhow::Error::msg)?;
    let options = ImportOptions {
        map,
        dry_run: args.dry_run,
        on_duplicate: args.on_duplicate,
        default_currency: config.default_currency.clone(),
    };
    let db = crate::commands::serve::connect(config).await?;
    // Lines, not rows, but close enough for a bar; the report has the exact count.
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    let bar = progress_bar(lines, &format!("importing {}", args.kind));
    let result = crm_store::import::import(&db, &Actor::system(), args.kind, &bytes, &options, &|done| {
        bar.set_position(done);
    })
    .await;
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(ImportError::File(message)) => bail!("{}: {message}; nothing was imported", args.file.display()),
        Err(ImportError::Store(e)) => {
            return Err(anyhow::Error::new(e).context("the import failed and was rolled back; nothing was imported"));
        }
        Err(ImportError::Interrupted { line, done, source }) => {
            print_report(&done);
            return Err(anyhow::Error::new(source).context(format!(
                "the import stopped at line {line}: the rows before it were imported (above), the rest were not; \
                 import lines {line} on again"
            )));
        }
    };
    print_report(&report);
    Ok(())
}

fn print_report(report: &ImportReport) {
    for note in &report.rejected {
        println!("line {}: rejected: {}", note.line, note.reason);
    }
    for note in &report.skipped {
        println!("line {}: skipped: {}", note.line, note.reason);
    }
    if !report.ignored_columns.is_empty() {
        println!("ignored columns (map them with --map COLUMN=FIELD): {}", report.ignored_columns.join(", "));
    }
    println!("{}", report.summary());
}
