//! The guest components of `workflows/`, built for `wasm32-wasip2` by this crate's build
//! script, as paths the engine and its tests can load: `crm_guests::LEAD_SCORE` and so on.
//! The examples are real steps later workflows use; the `fixture-*` components are hostile
//! or trivial steps for the runtime's tests and benchmark. The examples' bytes are also
//! compiled in ([`EMBEDDED`]), so a `crm` binary away from its build tree deploys them.

include!(concat!(env!("OUT_DIR"), "/components.rs"));

/// The bytes of a built component.
pub fn bytes(path: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// The compiled-in bytes of an example component (every component but the fixtures).
pub fn embedded(package: &str) -> Option<&'static [u8]> {
    EMBEDDED.iter().find(|(p, _)| *p == package).map(|(_, bytes)| *bytes)
}
