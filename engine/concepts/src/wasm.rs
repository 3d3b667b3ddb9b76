//! What kind of WebAssembly some bytes are, from their header: `\0asm`, then a version and
//! layer word that tells a core module (version 1, layer 0) from a component. Deploys and
//! the runtime refuse the wrong kind with the same words.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    CoreModule,
    Component,
    NotWasm,
}

pub fn wasm_kind(bytes: &[u8]) -> WasmKind {
    match bytes {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => WasmKind::CoreModule,
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => WasmKind::Component,
        _ => WasmKind::NotWasm,
    }
}

/// `Err` with the message an author can act on, unless the bytes are a component.
pub fn require_component(bytes: &[u8]) -> Result<(), &'static str> {
    match wasm_kind(bytes) {
        WasmKind::Component => Ok(()),
        WasmKind::CoreModule => Err("this is a core WebAssembly module, not a component; build for wasm32-wasip2 \
             (or wrap it with `wasm-tools component new`)"),
        WasmKind::NotWasm => Err("this is not WebAssembly (no `\\0asm` header)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_components_from_modules_and_junk() {
        assert_eq!(wasm_kind(b"\0asm\x0d\x00\x01\x00rest"), WasmKind::Component);
        assert_eq!(wasm_kind(b"\0asm\x01\x00\x00\x00rest"), WasmKind::CoreModule);
        assert_eq!(wasm_kind(b"hello world"), WasmKind::NotWasm);
        assert_eq!(wasm_kind(b"\0asm"), WasmKind::NotWasm);
        assert!(require_component(b"\0asm\x01\x00\x00\x00").unwrap_err().contains("core WebAssembly module"));
    }
}
