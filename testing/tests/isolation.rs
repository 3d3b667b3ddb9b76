//! Tests never write into the default installation (database `crm`, Redis prefix `crm`),
//! which a developer's `crm up` on the same machine uses: its worker would run whatever a
//! test left on the installation's jobs stream.
//!
//! The guarantee is structural, so it holds however many test runs share the machine's
//! Redis at the same time: every crm process, database and key prefix of a test comes from
//! crm-testing, which only makes `crm_t_*` names and strips the test environment's `CRM_*`
//! settings from every crm process. This test fails when test code anywhere in the
//! workspace goes around that. (`engine/cli/tests/isolation.rs` checks the same on a live
//! trigger flow.)

use std::path::{Path, PathBuf};

use crm_testing::workspace::root;

/// What only crm-testing may write, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    (
        "CARGO_BIN_EXE_crm",
        "start crm with crm_testing::process::crm() or a harness: they strip inherited CRM_* settings \
         and point the process at the test's own database and prefix",
    ),
    ("CRM_REDIS_URL", "only a harness points a crm process at Redis, always together with its own prefix"),
    ("CRM_REDIS_PREFIX", "a test's key prefix comes from crm_testing::TestPrefix"),
    ("CRM_TEST_PG", "the test services' URLs come from crm_testing::services"),
    ("CRM_TEST_REDIS", "the test services' URLs come from crm_testing::services"),
    ("127.0.0.1:5432", "the test Postgres comes from crm_testing::services"),
    ("127.0.0.1:6379", "the test Redis comes from crm_testing::services"),
    ("Queue::connect(", "a queue on a prefix of the test's own: crm_testing::TestPrefix::queue"),
    ("SchedulerConfig::new(", "a scheduler on a prefix of the test's own: crm_testing::TestPrefix::scheduler_config"),
    ("redis::Client::open(", "Redis connections on a prefix of the test's own: crm_testing::TestPrefix"),
    ("Db::connect(", "a database of the test's own: crm_testing::ScratchDb"),
    ("Db::create_scratch(", "a database of the test's own: crm_testing::ScratchDb"),
];

fn members() -> Vec<PathBuf> {
    let manifest: toml::Table =
        std::fs::read_to_string(root().join("Cargo.toml")).expect("the workspace manifest").parse().expect("TOML");
    manifest["workspace"]["members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .map(|m| root().join(m.as_str().expect("a member path")))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_test_reaches_for_services_around_the_support() {
    let mut files = Vec::new();
    for member in members() {
        for dir in ["tests", "benches", "examples"] {
            rust_files(&member.join(dir), &mut files);
        }
    }
    // This file names the patterns; the support's own tests may use the support's internals.
    let this = root().join("testing/tests");
    files.retain(|f| !f.starts_with(&this));
    assert!(files.len() > 20, "found only {} test files: is the walk broken?", files.len());

    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a readable test file");
        for (n, line) in text.lines().enumerate() {
            for (pattern, why) in FORBIDDEN {
                if line.contains(pattern) {
                    let at = file.strip_prefix(root()).unwrap_or(file).display();
                    offences.push(format!("{at}:{}: `{pattern}`: {why}", n + 1));
                }
            }
        }
    }
    assert!(offences.is_empty(), "tests that could reach the default installation:\n{}", offences.join("\n"));
}

/// The support itself never names the installation's prefix or database (its unit tests
/// may, to check that its names differ).
#[test]
fn the_support_never_names_the_installation() {
    let mut files = Vec::new();
    rust_files(&root().join("testing/src"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for needle in ["\"crm\"", "\"crm:", "/crm\""] {
            assert!(!code.contains(needle), "{} names {needle}", file.display());
        }
    }
}
