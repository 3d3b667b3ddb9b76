//! Building a workflow folder's components: each step's `component` names what to build,
//! and the file name says with what.
//!
//! | reference | built with |
//! |---|---|
//! | `greet.py` | componentize-py (the module `greet` beside the manifest, on the Python SDK) |
//! | `greet.js` | componentize-js (with `wasi:http` left out: steps use `crm:automation/http`) |
//! | `greet.wasm` | nothing: an already built component |
//! | `greet` | cargo, for `wasm32-wasip2`: a crm example (`workflows/`), else the cargo package `greet` of the workspace around the folder |
//! | `sha256:…` | nothing: a component the engine already stores |
//!
//! Python and JavaScript builds take seconds, so their output is kept in `DIR/target/crm/`
//! with the digest of everything that went in, and reused while nothing changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use crm_concepts::manifest::Manifest;
use sha2::{Digest, Sha256};

use crate::authoring::{Lang, vendor};

/// The versions `crm` is tested with; others may work.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// How a component reference is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// stored by the engine already
    Stored,
    Wasm(PathBuf),
    Python(PathBuf),
    Js(PathBuf),
    /// a cargo package (or a crm example)
    Crate(String),
}

impl Source {
    pub fn of(dir: &Path, reference: &str) -> Source {
        let file = || dir.join(reference);
        if reference.starts_with("sha256:") {
            Source::Stored
        } else if reference.ends_with(".wasm") {
            Source::Wasm(file())
        } else if reference.ends_with(".py") {
            Source::Python(file())
        } else if reference.ends_with(".js") || reference.ends_with(".mjs") {
            Source::Js(file())
        } else {
            Source::Crate(reference.to_string())
        }
    }

    pub fn lang(&self) -> Option<Lang> {
        match self {
            Source::Python(_) => Some(Lang::Python),
            Source::Js(_) => Some(Lang::Js),
            Source::Crate(_) => Some(Lang::Rust),
            Source::Stored | Source::Wasm(_) => None,
        }
    }
}

/// A built component.
pub struct Component {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// The languages the manifest's components are written in.
pub fn languages(dir: &Path, manifest: &Manifest) -> Vec<Lang> {
    let mut langs: Vec<Lang> = manifest
        .steps
        .iter()
        .filter(|s| !s.kind().holds())
        .filter_map(|s| Source::of(dir, &s.component).lang())
        .collect();
    // A crate that is a crm example needs no vendored SDK; one beside the manifest does.
    langs.retain(|l| *l != Lang::Rust || dir.join("Cargo.toml").is_file());
    langs.sort();
    langs.dedup();
    langs
}

/// Builds every component the manifest names (except `sha256:` references). A reference
/// that names nothing is left out with a message, so validation reports it beside every
/// other problem; a build that fails stops here with the tool's own output.
pub fn build_all(dir: &Path, manifest: &Manifest) -> anyhow::Result<BTreeMap<String, Component>> {
    // The tools run inside the folder: every path handed to them is absolute.
    let dir = &dir.canonicalize().with_context(|| format!("{} is not a folder", dir.display()))?;
    vendor::vendor(dir, &languages(dir, manifest))?;
    let mut built = BTreeMap::new();
    for step in manifest.steps.iter().filter(|s| !s.kind().holds()) {
        let reference = &step.component;
        if built.contains_key(reference) {
            continue;
        }
        let found = match Source::of(dir, reference) {
            Source::Stored => continue,
            Source::Wasm(path) => exists(path),
            Source::Python(path) => exists(path)?.map(|p| python(dir, &p)).transpose(),
            Source::Js(path) => exists(path)?.map(|p| js(dir, &p)).transpose(),
            Source::Crate(name) => rust(dir, &name),
        };
        match found? {
            Some(path) => {
                let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                eprintln!("component {reference}: {} ({} KB)", path.display(), bytes.len() / 1024);
                built.insert(reference.clone(), Component { path, bytes });
            }
            None => eprintln!("component {reference}: not found beside {}", dir.display()),
        }
    }
    Ok(built)
}

fn exists(path: PathBuf) -> anyhow::Result<Option<PathBuf>> {
    Ok(path.is_file().then_some(path))
}

/// Runs a build tool; a tool that is not installed gets the line that installs it.
fn run_tool(mut cmd: Command, tool: &str, install: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{tool} is not installed (or not on PATH): install it with `{install}`")
        }
        Err(e) => return Err(e).with_context(|| format!("running {tool}")),
    };
    if !out.status.success() {
        bail!(
            "{tool} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("built with {tool} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `DIR/target/crm/<file>.wasm`, rebuilt only when the inputs' digest changed.
fn cached(
    dir: &Path,
    source: &Path,
    ext: &str,
    build: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<PathBuf> {
    let name = source.file_name().and_then(|n| n.to_str()).unwrap_or("step");
    let out_dir = dir.join("target/crm");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = out_dir.join(format!("{}.wasm", name.replace('.', "-")));
    let stamp = out.with_extension("wasm.inputs");
    let digest = inputs_digest(dir, ext)?;
    if out.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == digest) {
        eprintln!("component {name}: unchanged since the last build");
        return Ok(out);
    }
    let _ = std::fs::remove_file(&stamp);
    build(&out)?;
    vendor::put(&stamp, &digest)?;
    Ok(out)
}

/// SHA-256 over every `ext` source in the folder (the vendored SDK and WIT included),
/// skipping build output.
fn inputs_digest(dir: &Path, ext: &str) -> anyhow::Result<String> {
    let mut files = Vec::new();
    collect(dir, ext, &mut files)?;
    files.push(dir.join(vendor::DIR).join("wit/step.wit"));
    files.sort();
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    for f in files {
        h.update(f.strip_prefix(dir).unwrap_or(&f).to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?);
    }
    Ok(hex::encode(h.finalize()))
}

fn collect(dir: &Path, ext: &str, into: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == "node_modules" || name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            collect(&path, ext, into)?;
        } else if path.extension().is_some_and(|e| e == ext) {
            into.push(path);
        }
    }
    Ok(())
}

fn python(dir: &Path, source: &Path) -> anyhow::Result<PathBuf> {
    let module = source.file_stem().and_then(|s| s.to_str()).context("a Python step needs a file name")?.to_string();
    cached(dir, source, "py", |out| {
        let crm = dir.join(vendor::DIR);
        let mut cmd = Command::new("componentize-py");
        cmd.current_dir(dir)
            .arg("--quiet")
            .arg("-d")
            .arg(crm.join("wit"))
            .args(["-w", "step", "componentize", &module, "-p"])
            .arg(source.parent().unwrap_or(dir))
            .arg("-p")
            .arg(crm.join(vendor::sdk_dir(Lang::Python)))
            .arg("-o")
            .arg(out);
        run_tool(cmd, "componentize-py", &format!("pip install {COMPONENTIZE_PY}"))
    })
}

fn js(dir: &Path, source: &Path) -> anyhow::Result<PathBuf> {
    cached(dir, source, source.extension().and_then(|e| e.to_str()).unwrap_or("js"), |out| {
        let mut cmd = Command::new("componentize-js");
        cmd.current_dir(dir)
            .arg(source)
            .arg("--wit")
            .arg(dir.join(vendor::DIR).join("wit"))
            .args(["-n", "step", "--disable", "http", "fetch-event", "-o"])
            .arg(out);
        run_tool(cmd, "componentize-js", &format!("npm install -g {COMPONENTIZE_JS}"))
    })
}

/// A crm example (built with `crm` itself), else the package `name` of the cargo
/// workspace around the folder (the folder's own, for a scaffold), built for
/// `wasm32-wasip2` in release.
fn rust(dir: &Path, name: &str) -> anyhow::Result<Option<PathBuf>> {
    if let Some((_, p)) = crm_guests::ALL.iter().find(|(package, _)| *package == name)
        && Path::new(p).is_file()
    {
        return Ok(Some(PathBuf::from(p)));
    }
    let Some(workspace) = dir
        .ancestors()
        .find(|a| std::fs::read_to_string(a.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]")))
    else {
        return Ok(None);
    };
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace).args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--message-format",
        "json-render-diagnostics",
        "-p",
        name,
    ]);
    let started = Instant::now();
    let out = cmd.stderr(std::process::Stdio::inherit()).output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("cargo is not installed: see https://rustup.rs"),
        _ => anyhow::anyhow!("running cargo: {e}"),
    })?;
    if !out.status.success() {
        bail!(
            "`cargo build --release --target wasm32-wasip2 -p {name}` failed in {} (is the target installed? \
             `rustup target add wasm32-wasip2`)",
            workspace.display()
        );
    }
    // The artifact's path from cargo's own report: right whatever the target directory.
    let artifact = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"].as_str() == Some(&name.replace('-', "_")))
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"));
    match artifact {
        Some(p) => {
            eprintln!("built with cargo in {:.1} s", started.elapsed().as_secs_f64());
            Ok(Some(p))
        }
        None => bail!("cargo built {name} but made no .wasm: is it a `cdylib` crate?"),
    }
}
