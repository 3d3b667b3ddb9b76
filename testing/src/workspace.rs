//! Where the repository's files are, for tests that read them.

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("the repository root exists")
}

/// The guest workspace: example workflows and the fixture components.
pub fn workflows_dir() -> PathBuf {
    root().join("workflows")
}
