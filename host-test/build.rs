//! Builds the azmi components (`wasm32-wasip2`, profile `component`: `azmi.wasm` and the
//! shared-cache build) so the host and the `azmi` binary can embed them. It uses its own target directory: the outer cargo holds the lock on `target/`,
//! and sharing it would deadlock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for watched in ["src", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // The shipped component, the `managed-identity-shared` build (token cache shared through
    // wasi:keyvalue) and the build with certificate support (the default chain's environment
    // credential signs with a certificate: RSA adds ~400 KB, so it is not in the shipped
    // build). Each has its own target directory so their artifacts differ.
    for (features, dir, variable) in [
        ("component", "component", "AZMI_COMPONENT_PATH"),
        (
            "shared-cache",
            "component-shared",
            "AZMI_SHARED_COMPONENT_PATH",
        ),
        (
            "component,client-certificate",
            "component-certificate",
            "AZMI_CERTIFICATE_COMPONENT_PATH",
        ),
    ] {
        let wasm = build_component(&root, features, dir);
        println!("cargo:rustc-env={variable}={}", wasm.display());
        // Names the component's precompiled form (`azmi precompile`), so a file made from
        // another build is never picked up.
        let bytes = std::fs::read(&wasm).expect("reading the component");
        println!("cargo:rustc-env={variable}_HASH={:016x}", fnv1a(&bytes));
    }
}

/// Builds `-p azmi --features <features>` for wasm32-wasip2 into `target/<dir>`.
fn build_component(root: &std::path::Path, features: &str, dir: &str) -> PathBuf {
    let target_dir = root.join("target").join(dir);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--quiet", "--profile", "component", "-p", "azmi"])
        .args(["--target", "wasm32-wasip2", "--features", features])
        .env("CARGO_TARGET_DIR", &target_dir);
    // The outer build's flags and wrappers (clippy, coverage) must not leak into the guest.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    let output = command.output().expect("running cargo for the component");
    if !output.status.success() {
        panic!(
            "building the azmi component failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("component")
        .join("azmi.wasm");
    assert!(wasm.exists(), "{} was not produced", wasm.display());
    wasm
}

/// FNV-1a, 64 bits: a stable fingerprint of the component's bytes (not a security check:
/// whoever can write next to the binary can replace the binary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
