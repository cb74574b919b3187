//! The built component's contract: its one export and what it imports.

use crate::util::host;
use azmi_host_test::COMPONENT;
use wasmtime::component::Component;

/// Imports a host may be asked for: the world's imports, the type-only `azmi:identity/types`,
/// and the `wasi:io` and `wasi:cli` interfaces the standard library pulls in. Unused world
/// imports are dropped, so the check compares against this list, not against `wit/`.
const ALLOWED_IMPORTS: &[&str] = &[
    "azmi:identity/types@0.2.0",
    "wasi:http/outgoing-handler@0.2.12",
    "wasi:http/types@0.2.12",
    "wasi:cli/environment@0.2.12",
    "wasi:clocks/wall-clock@0.2.12",
    "wasi:clocks/monotonic-clock@0.2.12",
    "wasi:random/random@0.2.12",
    "wasi:filesystem/preopens@0.2.12",
    "wasi:filesystem/types@0.2.12",
    "wasi:io/error@0.2.12",
    "wasi:io/poll@0.2.12",
    "wasi:io/streams@0.2.12",
    "wasi:cli/stdin@0.2.12",
    "wasi:cli/stdout@0.2.12",
    "wasi:cli/stderr@0.2.12",
    "wasi:cli/exit@0.2.12",
    "wasi:cli/terminal-input@0.2.12",
    "wasi:cli/terminal-output@0.2.12",
    "wasi:cli/terminal-stdin@0.2.12",
    "wasi:cli/terminal-stdout@0.2.12",
    "wasi:cli/terminal-stderr@0.2.12",
];

#[test]
fn component_exports_exactly_the_credential_interfaces() {
    let engine = host().engine();
    let component = Component::new(engine, COMPONENT).unwrap();
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(
        exports,
        [
            "azmi:identity/credential@0.2.0",
            "azmi:identity/default-credential@0.2.0"
        ]
    );
}

#[test]
fn component_imports_only_what_the_world_allows() {
    let engine = host().engine();
    let component = Component::new(engine, COMPONENT).unwrap();
    let imports: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    for import in &imports {
        assert!(
            ALLOWED_IMPORTS.contains(&import.as_str()),
            "unexpected import {import}"
        );
    }
    for needed in [
        "wasi:http/outgoing-handler@0.2.12",
        "wasi:cli/environment@0.2.12",
        "wasi:clocks/wall-clock@0.2.12",
        "wasi:random/random@0.2.12",
        "wasi:filesystem/preopens@0.2.12",
    ] {
        assert!(
            imports.iter().any(|i| i == needed),
            "missing import {needed}: {imports:?}"
        );
    }
}
