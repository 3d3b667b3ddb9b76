//! `crm workflow test DIR [--watch] [--update]`: the whole workflow on this machine against
//! its fixtures — no Postgres, no Redis — compared with `tests/*.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use chrono::Utc;
use crm_memory::MemoryCrm;
use crm_runtime::{Runtime, RuntimeConfig, digest_of};
use crm_store::workflows::WorkflowVersion;

use crate::authoring::{cases, local_run};
use crate::commands::workflow::{check, load};
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    pub dir: PathBuf,
    /// The run input when DIR has no tests/*.json (a JSON document).
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// Rewrite each test case's `expect` with what happened (review the diff, then commit).
    #[arg(long)]
    pub update: bool,
    /// Run again whenever a file in DIR changes (Ctrl-C stops).
    #[arg(long)]
    pub watch: bool,
}

pub async fn run(config: &Config, args: TestArgs) -> anyhow::Result<()> {
    if !args.watch {
        let failed = once(config, &args).await?;
        if failed > 0 {
            bail!("{failed} test case(s) of {} did not give what they expect", args.dir.display());
        }
        return Ok(());
    }
    loop {
        let seen = snapshot(&args.dir);
        match once(config, &args).await {
            Ok(0) => println!("── all cases pass; watching {} for changes", args.dir.display()),
            Ok(n) => println!("── {n} case(s) failed; watching {} for changes", args.dir.display()),
            Err(e) => println!("── error: {e:#}\n── watching {} for changes", args.dir.display()),
        }
        while snapshot(&args.dir) == seen {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Builds, runs every case, and returns how many failed.
async fn once(config: &Config, args: &TestArgs) -> anyhow::Result<usize> {
    let dir = &args.dir;
    let (source, components) = load(dir)?;
    let manifest = check(&source, &components)?;
    if let Some(s) = manifest.steps.iter().find(|s| s.component.starts_with("sha256:")) {
        bail!("step {:?} names a stored component ({}): a local run needs its source or .wasm", s.id, s.component);
    }
    // Compiled code is kept beside the build output: a second run loads it in milliseconds.
    let rt = Runtime::<MemoryCrm>::new(RuntimeConfig {
        max_instances: 8,
        cache_dir: Some(dir.join("target/crm/cache")),
        egress: config.egress_policy()?,
        ..RuntimeConfig::default()
    })
    .context("starting the wasm runtime")?;
    let mut prepared = BTreeMap::new();
    for (reference, bytes) in components {
        let p = rt
            .load(&digest_of(&bytes), Arc::new(bytes))
            .await
            .map_err(|e| anyhow::anyhow!("component {reference}: {e}"))?;
        prepared.insert(reference, p);
    }
    let version = Arc::new(WorkflowVersion {
        workflow: manifest.name.clone(),
        version: 1,
        label: manifest.version.clone(),
        manifest,
        components: BTreeMap::new(),
        deployed_by: None,
        deployed_at: Utc::now(),
    });

    let found = cases::load(dir)?;
    if found.is_empty() {
        let input = serde_json::from_str(&args.input).context("--input is not valid JSON")?;
        let crm = Arc::new(fixtures(dir, None)?);
        let got = local_run::run(&rt, version, &prepared, input, None, crm).await;
        println!("(no tests/*.json: nothing to compare)");
        return Ok(usize::from(got.status != "succeeded"));
    }
    let mut failed = 0;
    for (path, case) in &found {
        println!("═══ {}", path.display());
        let crm = Arc::new(fixtures(dir, case.fixtures.as_deref())?);
        let got = local_run::run(&rt, version.clone(), &prepared, case.input.clone(), case.acting_user, crm).await;
        if args.update {
            let text = serde_json::to_string_pretty(&cases::updated(case, &got))? + "\n";
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            println!("updated {}", path.display());
            continue;
        }
        let diffs = cases::compare(&case.expect, &got);
        if diffs.is_empty() {
            println!("ok {}", path.display());
        } else {
            failed += 1;
            println!("FAILED {}", path.display());
            for d in diffs {
                println!("  {d}");
            }
        }
    }
    println!("{} case(s): {} passed, {failed} failed", found.len(), found.len() - failed);
    Ok(failed)
}

/// The case's fixture file (relative to DIR), else DIR/fixtures.json, else no records.
fn fixtures(dir: &Path, named: Option<&str>) -> anyhow::Result<MemoryCrm> {
    let path = match named {
        Some(n) => dir.join(n),
        None => dir.join("fixtures.json"),
    };
    if named.is_none() && !path.is_file() {
        return Ok(MemoryCrm::empty());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    MemoryCrm::from_json(&text).with_context(|| format!("loading {}", path.display()))
}

/// Every file's path, size and change time, outside build output.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    fn walk(dir: &Path, into: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name == "target" || name == ".crm" || name == "__pycache__" {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                walk(&path, into);
            } else if let Ok(m) = entry.metadata() {
                into.push((path, m.len(), m.modified().ok()));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    files
}
