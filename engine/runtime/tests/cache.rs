//! Components compile once: the compiled code is cached on disk by digest and reloaded by
//! the next process without the component's bytes; junk and foreign files get clear errors.

mod common;

use std::sync::Arc;

use common::{input, output};
use crm_concepts::step::StepLimits;
use crm_memory::MemoryCrm;
use crm_runtime::{Runtime, RuntimeConfig, digest_of};
use serde_json::json;

fn runtime_with_cache(dir: &std::path::Path) -> Runtime<MemoryCrm> {
    Runtime::new(RuntimeConfig { cache_dir: Some(dir.to_path_buf()), max_instances: 4, ..RuntimeConfig::default() })
        .unwrap()
}

#[tokio::test]
async fn a_compiled_component_is_reloaded_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(crm_guests::ECHO).unwrap();
    let digest = digest_of(&bytes);
    {
        let rt = runtime_with_cache(dir.path());
        assert!(rt.load_cached(&digest).await.unwrap().is_none(), "nothing cached yet");
        rt.load(&digest, Arc::new(bytes)).await.unwrap();
    }
    assert!(dir.path().join(format!("{digest}.cwasm")).is_file());

    // A new runtime (a restarted worker) needs no bytes.
    let rt = runtime_with_cache(dir.path());
    let component = rt.load_cached(&digest).await.unwrap().expect("reloaded from the cache");
    let i = input(json!({"again": true}), json!(null));
    let limits = StepLimits::default();
    let call = common::call("s", &i, common::grants(&[]), &limits);
    let r = rt.run(&component, call, Arc::new(MemoryCrm::empty())).await;
    assert_eq!(output(&r)["run_input"], json!({"again": true}));
}

#[tokio::test]
async fn a_cached_artifact_that_does_not_match_its_hash_is_compiled_again_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(crm_guests::ECHO).unwrap();
    let digest = digest_of(&bytes);
    runtime_with_cache(dir.path()).load(&digest, Arc::new(bytes.clone())).await.unwrap();
    let artifact = dir.path().join(format!("{digest}.cwasm"));
    let mut tampered = std::fs::read(&artifact).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&artifact, &tampered).unwrap();

    // Without the bytes the tampered artifact is not trusted: nothing loads.
    let rt = runtime_with_cache(dir.path());
    let e = rt.load_cached(&digest).await.err().expect("refused");
    assert_eq!(e.code, "component_missing", "{e}");
    // With them, the component is compiled afresh and runs.
    let component = rt.load(&digest, Arc::new(bytes)).await.unwrap();
    let i = input(json!({"fresh": true}), json!(null));
    let limits = StepLimits::default();
    let r = rt.run(&component, common::call("s", &i, common::grants(&[]), &limits), Arc::new(MemoryCrm::empty())).await;
    assert_eq!(output(&r)["run_input"], json!({"fresh": true}));
}

#[tokio::test]
async fn a_digest_that_is_not_a_sha256_never_reaches_the_cache_directory() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_with_cache(dir.path());
    let bytes = std::fs::read(crm_guests::ECHO).unwrap();
    for bad in ["../../etc/passwd", "ABC", &"g".repeat(64), &format!("{}/x", "0".repeat(62))] {
        assert!(!rt.has_cached(bad));
        let e = rt.load(bad, Arc::new(bytes.clone())).await.err().expect("refused");
        assert_eq!(e.code, "invalid_component", "{bad}: {e}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was written");
}

#[tokio::test]
async fn bytes_that_do_not_match_their_digest_are_refused() {
    let rt = common::runtime();
    let bytes = std::fs::read(crm_guests::ECHO).unwrap();
    let err = rt.load(&"0".repeat(64), Arc::new(bytes)).await.err().expect("refused");
    assert_eq!(err.code, "invalid_component");
    assert!(err.message.contains("hash to"), "{err}");
}

#[tokio::test]
async fn check_tells_core_modules_junk_and_other_worlds_apart() {
    let rt = common::runtime();
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let e = crm_runtime::check::check(&rt, core_module).await.unwrap_err();
    assert!(e.message.contains("core WebAssembly module, not a component"), "{e}");

    let e = crm_runtime::check::check(&rt, b"#!/bin/sh\necho hi\n".to_vec()).await.unwrap_err();
    assert!(e.message.contains("not WebAssembly"), "{e}");

    // An empty component: valid, but it exports no `run`.
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    let e = crm_runtime::check::check(&rt, empty_component).await.unwrap_err();
    assert!(e.message.contains("does not implement the crm:automation/step world"), "{e}");

    let report = crm_runtime::check::check(&rt, std::fs::read(crm_guests::LEAD_SCORE).unwrap()).await.unwrap();
    assert!(report.crm_imports.iter().any(|i| i.starts_with("crm:automation/records")), "{report:?}");
}
