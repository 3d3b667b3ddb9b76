//! Builds the guest components in `workflows/` for `wasm32-wasip2` with a nested cargo, so
//! `cargo build` and `cargo test` always run against components built from the sources in
//! the tree. Never checked in: the `.wasm` files live under `target/wasm-guests`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each component: the constant name exposed to the engine, and the cargo package name.
const COMPONENTS: &[(&str, &str)] = &[
    ("LEAD_SCORE", "lead-score"),
    ("FOLLOW_UP_TASK", "follow-up-task"),
    ("DEAL_WON_MESSAGE", "deal-won-message"),
    ("STALE_DEALS", "stale-deals"),
    ("DUPLICATE_CONTACTS", "duplicate-contacts"),
    ("INBOUND_LEAD", "inbound-lead"),
    ("QUALIFY_SUMMARY", "qualify-summary"),
    ("TASK_REMINDER", "task-reminder"),
    ("DEAL_DISCOUNT", "deal-discount"),
    ("ECHO", "fixture-echo"),
    ("NOTE", "fixture-note"),
    ("NOT_A_STEP", "fixture-not-a-step"),
    ("COUNTER", "fixture-counter"),
    ("HTTP_GET", "fixture-http-get"),
    ("SLOW", "fixture-slow"),
    ("INFINITE_LOOP", "fixture-infinite-loop"),
    ("MEMORY_BOMB", "fixture-memory-bomb"),
    ("DEEP_RECURSION", "fixture-deep-recursion"),
    ("READ_PASSWD", "fixture-read-passwd"),
    ("OPEN_SOCKET", "fixture-open-socket"),
    ("WRITE_WITHOUT_GRANT", "fixture-write-without-grant"),
    ("HUGE_OUTPUT", "fixture-huge-output"),
    ("PANIC", "fixture-panic"),
];

/// Variables the outer cargo sets for this build script that would redirect or break the
/// nested build (wrong target dir, host RUSTFLAGS, clippy's wrapper, ...).
fn is_inherited_build_var(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
        "CARGO",
    ];
    // Kept: CARGO_HOME (where the registry lives), CARGO_MAKEFLAGS (the jobserver, so the
    // nested build shares the outer build's CPU budget), network/registry settings.
    const KEEP_PREFIXES: &[&str] = &["CARGO_HOME", "CARGO_MAKEFLAGS", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTR"];
    EXACT.contains(&key) || (key.starts_with("CARGO_") && !KEEP_PREFIXES.iter().any(|p| key.starts_with(p)))
}

fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

const TARGET: &str = "wasm32-wasip2";

/// The sysroot of the compiler cargo builds with (the toolchain `rust-toolchain.toml` picked).
fn sysroot() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn target_installed(sysroot: &Path) -> bool {
    sysroot.join("lib").join("rustlib").join(TARGET).is_dir()
}

/// An installed stable toolchain does not add `rust-toolchain.toml`'s `targets` by itself:
/// add the target through rustup when it is missing, or stop with the one command to run.
fn ensure_target() {
    let Some(sysroot) = sysroot() else {
        return; // no answer from rustc: let the nested cargo say what is wrong
    };
    if target_installed(&sysroot) {
        return;
    }
    println!("cargo:warning=the {TARGET} target is missing; running `rustup target add {TARGET}`");
    // The rustup proxy that started this build set RUSTUP_TOOLCHAIN, so this adds the target
    // to the toolchain in use.
    let added = Command::new("rustup").args(["target", "add", TARGET]).status().is_ok_and(|s| s.success());
    if !added || !target_installed(&sysroot) {
        panic!(
            "the {TARGET} target is not installed for the Rust toolchain at {} and rustup could not add it. \
             Run this, then build again:\n\n    rustup target add {TARGET}\n",
            sysroot.display()
        );
    }
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..").canonicalize().expect("the repository root exists");
    let workflows = root.join("workflows");
    let target_dir = root.join("target").join("wasm-guests");
    println!("cargo:rerun-if-changed={}", workflows.display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    watch(&workflows);
    watch(&root.join("wit"));

    ensure_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&workflows)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir);
    for (key, _) in std::env::vars_os() {
        if let Some(key) = key.to_str()
            && is_inherited_build_var(key)
        {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    if !status.success() {
        panic!("building the guest components in {} failed ({status}); its errors are above", workflows.display());
    }

    let out_dir = target_dir.join("wasm32-wasip2").join("release");
    let mut code = String::new();
    let mut all = String::from("/// Every component: (package name, path).\npub const ALL: &[(&str, &str)] = &[\n");
    // The examples' bytes go into the binary itself, so an installed `crm` (or a container
    // image without the build tree) can still deploy them; the fixtures stay on disk.
    let mut embedded = String::from(
        "/// The example components' bytes, compiled in: (package name, bytes).\npub const EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for (constant, package) in COMPONENTS {
        let file = out_dir.join(format!("{}.wasm", package.replace('-', "_")));
        assert!(file.is_file(), "the guest build did not produce {}", file.display());
        let path = file.display().to_string();
        writeln!(code, "/// The `{package}` component (`wasm32-wasip2`, release).").unwrap();
        writeln!(code, "pub const {constant}: &str = {path:?};").unwrap();
        writeln!(all, "    ({package:?}, {constant}),").unwrap();
        if !package.starts_with("fixture-") {
            writeln!(embedded, "    ({package:?}, include_bytes!({path:?})),").unwrap();
        }
    }
    all.push_str("];\n");
    embedded.push_str("];\n");
    code.push_str(&all);
    code.push_str(&embedded);
    let generated = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("components.rs");
    std::fs::write(&generated, code).expect("writing the generated component list");
}
