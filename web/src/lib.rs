//! raftkv-web: the browser playground's bindings over `raftkv_core`.

use wasm_bindgen::prelude::*;

/// The version of the core the page runs, so the page can show what it was built from.
#[wasm_bindgen]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
