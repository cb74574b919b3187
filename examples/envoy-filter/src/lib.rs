//! The azmi Envoy filter: every request through it gets `Authorization: Bearer <token>`
//! for the configured scope, from the managed identity Envoy runs under. All the logic is
//! in `azmi::proxy_wasm`; this crate only names the module's entry point.

proxy_wasm::main! {{
    azmi::proxy_wasm::install();
}}
