//! The hostile fixture components and the error each must end with, read from
//! `workflows/fixtures/<name>/expected.toml` beside each fixture's source, so the runtime's
//! and the worker's tests iterate the fixtures instead of naming each one.
//!
//! `expected.toml`: `code` (the step error's code), `message` (a part of its message),
//! `grants` (the capabilities the step gets), `stage` (`"run"`, the default, or `"load"`
//! for a component refused before it runs), and `[limits]` `timeout_ms`, `memory_mb`,
//! optionally `output_bytes` (default 1 MiB) and `log_bytes` (default 16 KiB).

use std::path::PathBuf;

use crm_concepts::step::StepLimits;
use serde::Deserialize;

use crate::workspace::workflows_dir;

/// Where a hostile component is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// loading refuses it: it never runs
    Load,
    /// it runs and its step fails
    Run,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFile {
    code: String,
    message: String,
    #[serde(default)]
    grants: Vec<String>,
    #[serde(default = "run")]
    stage: Stage,
    limits: Limits,
}

fn run() -> Stage {
    Stage::Run
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    timeout_ms: u64,
    memory_mb: u64,
    #[serde(default = "default_output_bytes")]
    output_bytes: u64,
    #[serde(default = "default_log_bytes")]
    log_bytes: u64,
}

fn default_output_bytes() -> u64 {
    1 << 20
}

fn default_log_bytes() -> u64 {
    16 << 10
}

/// A fixture with its expected failure.
#[derive(Debug, Clone)]
pub struct HostileFixture {
    /// the cargo package, as in `crm_guests::ALL` (`fixture-infinite-loop`)
    pub package: String,
    /// the built component
    pub path: &'static str,
    pub code: String,
    pub message: String,
    pub grants: Vec<String>,
    pub limits: StepLimits,
    pub stage: Stage,
}

impl HostileFixture {
    /// The grants as `&str`s, as the harnesses take them.
    pub fn grant_refs(&self) -> Vec<&str> {
        self.grants.iter().map(String::as_str).collect()
    }
}

/// The folder of a fixture's sources (`fixture-panic` → `workflows/fixtures/panic`).
pub fn source_dir(package: &str) -> Option<PathBuf> {
    package.strip_prefix("fixture-").map(|name| workflows_dir().join("fixtures").join(name))
}

/// Every built fixture that has an `expected.toml`, in `crm_guests::ALL`'s order. A broken
/// or orphaned `expected.toml` fails loudly rather than testing nothing.
pub fn hostile() -> Vec<HostileFixture> {
    let mut found = Vec::new();
    for (package, path) in crm_guests::ALL {
        let Some(dir) = source_dir(package) else {
            continue;
        };
        let file = dir.join("expected.toml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let e: ExpectedFile = toml::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        found.push(HostileFixture {
            package: package.to_string(),
            path,
            code: e.code,
            message: e.message,
            grants: e.grants,
            limits: StepLimits {
                timeout_ms: e.limits.timeout_ms,
                memory_bytes: e.limits.memory_mb << 20,
                output_bytes: e.limits.output_bytes,
                log_bytes: e.limits.log_bytes,
            },
            stage: e.stage,
        });
    }
    let built: Vec<PathBuf> = crm_guests::ALL.iter().filter_map(|(p, _)| source_dir(p)).collect();
    let on_disk = std::fs::read_dir(workflows_dir().join("fixtures")).expect("workflows/fixtures").flatten();
    for dir in on_disk.map(|e| e.path()) {
        assert!(
            !dir.join("expected.toml").is_file() || built.contains(&dir),
            "{} has an expected.toml but is not a built component (crm_guests::ALL, engine/guests/build.rs)",
            dir.display()
        );
    }
    assert!(!found.is_empty(), "no fixture under {} has an expected.toml", workflows_dir().display());
    found
}
