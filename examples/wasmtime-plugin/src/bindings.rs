//! Host bindings for the `azmi:identity/managed-identity` world (`wit/` at the repository root).
//! Every `wasi:` import maps onto wasmtime-wasi and wasmtime-wasi-http, so the linker functions
//! of those crates provide them.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "managed-identity",
    exports: { default: async },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:cli": wasmtime_wasi::p2::bindings::cli,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
        "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
    require_store_data_send: true,
});

pub use self::azmi::identity::types::{
    AccessToken, Error, ErrorInfo, IdentitySelector, Source, TokenRequest,
};
