//! Every link between the repository's Markdown files leads somewhere: the file exists and,
//! where the link names a section (`docs/workflows.md#performance`), that file has a
//! heading with that anchor. Moving a section breaks a link here, not for a reader.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crm_testing::workspace::root;

/// Build outputs and third-party trees hold Markdown that is not ours.
const SKIP_DIRS: &[&str] = &["target", "node_modules", ".git", "vendor"];

fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name) && !name.starts_with('.') {
                markdown_files(&path, found);
            }
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

/// The lines outside fenced code blocks, numbered from 1.
fn outside_fences(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            lines.push((n + 1, line));
        }
    }
    lines
}

/// A line with its inline code spans left out: a link shown as code is no link.
fn without_code(line: &str) -> String {
    let mut in_code = false;
    line.chars()
        .filter(|&c| {
            if c == '`' {
                in_code = !in_code;
                return false;
            }
            !in_code
        })
        .collect()
}

/// The anchors GitHub gives a file's headings: lower case, letters, digits, `-` and `_`
/// kept, spaces made `-`, everything else dropped; a repeated one gets `-1`, `-2`, ….
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in outside_fences(text) {
        let Some(title) = line.strip_prefix('#') else { continue };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while !seen.insert(unique.clone()) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
    }
    seen
}

/// The destinations of the inline links `[text](destination)` on a line.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(after[..end].split_whitespace().next().unwrap_or_default().to_string());
        rest = &after[end..];
    }
    targets
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.iter().any(|f| f.ends_with("README.md")), "no README.md under {}", root.display());
    let mut broken = Vec::new();
    // Many links lead into the same few files: each one's headings are read once.
    let mut anchors_of: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (line_no, line) in outside_fences(&text) {
            for target in link_targets(&without_code(line)) {
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let linked = if path.is_empty() { file.clone() } else { file.parent().expect("a folder").join(path) };
                let where_ = format!("{}:{line_no}: {target}", file.strip_prefix(&root).unwrap_or(file).display());
                if !linked.exists() {
                    broken.push(format!("{where_} (no such file)"));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                if linked.extension().and_then(|e| e.to_str()) != Some("md") {
                    continue;
                }
                let known = anchors_of.entry(linked.clone()).or_insert_with(|| {
                    let text = std::fs::read_to_string(&linked).unwrap_or_else(|e| panic!("{}: {e}", linked.display()));
                    anchors(&text)
                });
                if !known.contains(anchor) {
                    broken.push(format!("{where_} (no heading with that anchor)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "links that lead nowhere:\n{}", broken.join("\n"));
}

#[test]
fn anchors_follow_the_way_github_makes_them() {
    let text =
        "# crm\n## How a request flows\n### `crm bench runs` (JSON)\n## Retry\n## Retry\n```\n# not a heading\n```\n";
    let found = anchors(text);
    for anchor in ["crm", "how-a-request-flows", "crm-bench-runs-json", "retry", "retry-1"] {
        assert!(found.contains(anchor), "{anchor} missing from {found:?}");
    }
    assert!(!found.contains("not-a-heading"), "a line in a code block is no heading: {found:?}");
    assert_eq!(link_targets("see [a](docs/x.md#y) and [b](#z \"title\")"), ["docs/x.md#y", "#z"]);
}
