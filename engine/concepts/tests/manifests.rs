//! Manifest validation as spec folders: every `manifests/valid/*.toml` parses and
//! validates, and every `manifests/invalid/<case>.toml` fails with exactly the errors its
//! `<case>.expected` lists. A new case is a new pair of files, no code.
//!
//! `<case>.expected` has one line per error, in the order they are reported:
//! `FIELD: MESSAGE PART`, where the field path matches exactly (or, ending in `*`, as a
//! prefix: parse errors name a line and column) and the message contains the part. Lines
//! starting with `#` are comments.

use std::path::{Path, PathBuf};

use crm_concepts::manifest::{FieldError, Manifest};

struct Expected {
    field: String,
    message: String,
}

impl Expected {
    fn matches(&self, e: &FieldError) -> bool {
        let field = match self.field.strip_suffix('*') {
            Some(prefix) => e.field.starts_with(prefix),
            None => e.field == self.field,
        };
        field && e.message.contains(&self.message)
    }
}

fn read_expected(path: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (field, message) =
                l.split_once(": ").unwrap_or_else(|| panic!("{}: {l:?} is not `FIELD: MESSAGE PART`", path.display()));
            Expected { field: field.trim().to_string(), message: message.trim().to_string() }
        })
        .collect()
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// What is wrong with one invalid case, if anything.
fn check_invalid(case: &Path) -> Option<String> {
    let expected_path = case.with_extension("expected");
    if !expected_path.is_file() {
        return Some(format!("no {} beside it", expected_path.display()));
    }
    let expected = read_expected(&expected_path);
    let text = std::fs::read_to_string(case).expect("readable case");
    let errors = match Manifest::parse(&text) {
        Ok(_) => return Some("it is accepted".into()),
        Err(e) => e.errors,
    };
    let matched = errors.len() == expected.len() && expected.iter().zip(&errors).all(|(x, e)| x.matches(e));
    if matched {
        return None;
    }
    let got: Vec<String> = errors.iter().map(|e| format!("  {}: {}", e.field, e.message)).collect();
    let want: Vec<String> = expected.iter().map(|x| format!("  {}: {}", x.field, x.message)).collect();
    Some(format!("expected\n{}\ngot\n{}", want.join("\n"), got.join("\n")))
}

#[test]
fn every_case_in_the_manifest_folders() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests");
    let mut failures = Vec::new();

    let valid = files(&root.join("valid"), "toml");
    for case in &valid {
        let text = std::fs::read_to_string(case).expect("readable case");
        if let Err(e) = Manifest::parse(&text) {
            failures.push(format!("{}: should be valid, but: {e}", case.display()));
        }
    }

    let invalid = files(&root.join("invalid"), "toml");
    for case in &invalid {
        if let Some(problem) = check_invalid(case) {
            failures.push(format!("{}: {problem}", case.display()));
        }
    }
    // An expectation without its case would silently test nothing.
    for expected in files(&root.join("invalid"), "expected") {
        if !expected.with_extension("toml").is_file() {
            failures.push(format!("{}: no case beside it", expected.display()));
        }
    }

    assert!(!valid.is_empty() && !invalid.is_empty(), "no cases found under {}", root.display());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
