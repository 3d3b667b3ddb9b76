//! What a workflow folder needs from `crm` to build: the WIT contract, the SDK of each
//! language it uses, and the manifest's JSON Schema, kept in `DIR/.crm/`. The files are the
//! ones this `crm` binary was built with (embedded at compile time), so a step is always
//! built against the contract of the host that deploys it, offline, and wherever the folder
//! lives: no path into a crm checkout, no git or registry dependency for the SDK. Every build
//! rewrites what differs, so `.crm/` is not for editing.

use std::path::Path;

use anyhow::Context;

use crate::authoring::Lang;

/// Where the vendored files live inside a workflow folder.
pub const DIR: &str = ".crm";

const WIT: &str = include_str!("../../../../wit/step.wit");

/// The Rust SDK's crate (`workflows/sdk`), made standalone: its manifest names its
/// dependencies itself, and its bindings read the WIT from inside the crate.
const RUST_SDK_MANIFEST: &str = r#"[package]
name = "crm-sdk"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"
description = "Write a crm workflow step as one plain function (vendored by `crm workflow build`; do not edit)"

[dependencies]
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc", "std"] }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
"#;

const RUST_SDK: [(&str, &str); 6] = [
    ("src/lib.rs", include_str!("../../../../workflows/sdk/src/lib.rs")),
    ("src/defaults.rs", include_str!("../../../../workflows/sdk/src/defaults.rs")),
    ("src/input.rs", include_str!("../../../../workflows/sdk/src/input.rs")),
    ("src/log.rs", include_str!("../../../../workflows/sdk/src/log.rs")),
    ("src/money.rs", include_str!("../../../../workflows/sdk/src/money.rs")),
    ("src/output.rs", include_str!("../../../../workflows/sdk/src/output.rs")),
];

const PYTHON_SDK: [(&str, &str); 9] = [
    ("crm_sdk/__init__.py", include_str!("../../../../workflows/sdk-python/crm_sdk/__init__.py")),
    ("crm_sdk/errors.py", include_str!("../../../../workflows/sdk-python/crm_sdk/errors.py")),
    ("crm_sdk/http.py", include_str!("../../../../workflows/sdk-python/crm_sdk/http.py")),
    ("crm_sdk/log.py", include_str!("../../../../workflows/sdk-python/crm_sdk/log.py")),
    ("crm_sdk/money.py", include_str!("../../../../workflows/sdk-python/crm_sdk/money.py")),
    ("crm_sdk/notify.py", include_str!("../../../../workflows/sdk-python/crm_sdk/notify.py")),
    ("crm_sdk/records.py", include_str!("../../../../workflows/sdk-python/crm_sdk/records.py")),
    ("crm_sdk/secrets.py", include_str!("../../../../workflows/sdk-python/crm_sdk/secrets.py")),
    ("crm_sdk/state.py", include_str!("../../../../workflows/sdk-python/crm_sdk/state.py")),
];

const JS_SDK: [(&str, &str); 1] = [("crm-sdk.js", include_str!("../../../../workflows/sdk-js/crm-sdk.js"))];

/// The lock file of the guest workspace: a new Rust step starts from the dependency
/// versions the examples are built and tested with.
pub const CARGO_LOCK: &str = include_str!("../../../../workflows/Cargo.lock");

const README: &str = "Written by `crm` (the WIT contract, the SDKs, the workflow.toml schema) and \
rewritten by every `crm workflow build|test|deploy`: do not edit.\n";

/// The SDK folder of a language inside `.crm/`.
pub fn sdk_dir(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "sdk-rust",
        Lang::Python => "sdk-python",
        Lang::Js => "sdk-js",
    }
}

/// Writes (or refreshes) `DIR/.crm/` for the given languages.
pub fn vendor(dir: &Path, langs: &[Lang]) -> anyhow::Result<()> {
    let root = dir.join(DIR);
    put(&root.join("README"), README)?;
    put(&root.join("wit/step.wit"), WIT)?;
    let schema = serde_json::to_string_pretty(&crm_concepts::manifest_schema::workflow_schema())?;
    put(&root.join("workflow.schema.json"), &schema)?;
    for lang in langs {
        let sdk = root.join(sdk_dir(*lang));
        match lang {
            Lang::Rust => {
                put(&sdk.join("Cargo.toml"), RUST_SDK_MANIFEST)?;
                put(&sdk.join("wit/step.wit"), WIT)?;
                for (path, text) in RUST_SDK {
                    // In the repository the bindings read `wit/` two folders up.
                    let text = text.replace("path: \"../../wit\"", "path: \"wit\"");
                    put(&sdk.join(path), &text)?;
                }
            }
            Lang::Python => {
                for (path, text) in PYTHON_SDK {
                    put(&sdk.join(path), text)?;
                }
            }
            Lang::Js => {
                for (path, text) in JS_SDK {
                    put(&sdk.join(path), text)?;
                }
            }
        }
    }
    Ok(())
}

/// Writes `text` unless the file already holds it (keeps mtimes, so builds stay cached).
pub fn put(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
