//! Every member crate keeps the workspace's lints (`[workspace.lints]` in the root
//! manifest): a new crate that forgets `[lints] workspace = true` fails here, not in review.

use crm_testing::workspace::root;

fn manifest(path: &std::path::Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_member_crate_uses_the_workspace_lints() {
    let workspace = manifest(&root().join("Cargo.toml"));
    assert!(workspace["workspace"].get("lints").is_some(), "the root manifest has no [workspace.lints]");
    let members = workspace["workspace"]["members"].as_array().expect("workspace members");
    let missing: Vec<&str> = members
        .iter()
        .filter_map(|m| m.as_str())
        .filter(|m| {
            let crate_manifest = manifest(&root().join(m).join("Cargo.toml"));
            crate_manifest.get("lints").and_then(|l| l.get("workspace")).and_then(toml::Value::as_bool) != Some(true)
        })
        .collect();
    assert!(missing.is_empty(), "members without `[lints] workspace = true`: {missing:?}");
}
