//! Precompiled components for the CLI. `azmi precompile` compiles the embedded components once
//! (wasmtime's `Engine::precompile_component`) and writes them next to the `azmi` binary
//! (`just cli` does it right after the build); every later start deserializes the one it needs
//! in a few milliseconds instead of compiling it with Cranelift (≈ 0.1 s on two cores: most of a
//! one-shot `azmi token`).
//!
//! Why loading such a file is sound: wasmtime runs a precompiled file's machine code as it is,
//! so the file must come from where the program itself comes from. It lives next to the binary
//! (or in [`PRECOMPILED_DIR`], a test knob), which only whoever can already replace the binary
//! can write; its name carries the fingerprint of the embedded component it was made from, so a
//! file from another build is never picked; and wasmtime refuses a file made by another
//! wasmtime version or engine configuration when it deserializes it. Whenever anything is off,
//! the CLI compiles as before and `azmi doctor` says why.

use crate::host::{CERTIFICATE_COMPONENT, COMPONENT, Host, SHARED_COMPONENT};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Test knob: the directory holding precompiled components, instead of the binary's own.
pub const PRECOMPILED_DIR: &str = "AZMI_PRECOMPILED_DIR";

/// One of the components the CLI embeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    /// `azmi.wasm`, the shipped `managed-identity` world.
    Plain,
    /// The shared-cache build (`azmi token`'s default: tokens in the per-user file store).
    Shared,
    /// The build with client-certificate support.
    Certificate,
}

impl Build {
    /// Every embedded build.
    pub const ALL: [Build; 3] = [Build::Plain, Build::Shared, Build::Certificate];

    /// The component's bytes.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Build::Plain => COMPONENT,
            Build::Shared => SHARED_COMPONENT,
            Build::Certificate => CERTIFICATE_COMPONENT,
        }
    }

    /// The name of its precompiled file: the build and the fingerprint of its bytes.
    pub fn file_name(self) -> String {
        let (name, fingerprint) = match self {
            Build::Plain => ("azmi", env!("AZMI_COMPONENT_PATH_HASH")),
            Build::Shared => ("azmi-shared", env!("AZMI_SHARED_COMPONENT_PATH_HASH")),
            Build::Certificate => (
                "azmi-certificate",
                env!("AZMI_CERTIFICATE_COMPONENT_PATH_HASH"),
            ),
        };
        format!("{name}-{fingerprint}.cwasm")
    }
}

/// How a [`Host`] got its compiled component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Deserialized from this file.
    Precompiled(PathBuf),
    /// Compiled at start, and why no precompiled file was used.
    Compiled(String),
}

/// Where precompiled components live: [`PRECOMPILED_DIR`] when set and non-empty, else the
/// directory of the running binary.
pub fn dir() -> Option<PathBuf> {
    match std::env::var_os(PRECOMPILED_DIR).filter(|v| !v.is_empty()) {
        Some(dir) => Some(dir.into()),
        None => std::env::current_exe()
            .ok()?
            .parent()
            .map(Path::to_path_buf),
    }
}

/// A host for `build`: deserialized from its precompiled file when there is a usable one,
/// else compiled now.
pub fn load(build: Build) -> anyhow::Result<(Host, Origin)> {
    let engine = Host::new_engine()?;
    let (component, origin) = match find(&engine, build) {
        Ok((component, path)) => (component, Origin::Precompiled(path)),
        Err(why) => (
            Component::new(&engine, build.bytes())?,
            Origin::Compiled(why),
        ),
    };
    Ok((Host::from_component(&engine, &component)?, origin))
}

/// `build`'s precompiled component for `engine` and its file, or why there is no usable one
/// (nothing is compiled: `azmi doctor` asks without paying for a compilation).
pub fn find(engine: &Engine, build: Build) -> Result<(Component, PathBuf), String> {
    let path = dir()
        .ok_or("the binary's directory is unknown")?
        .join(build.file_name());
    if !path.is_file() {
        return Err(format!(
            "no {} (run `azmi precompile` once)",
            path.display()
        ));
    }
    // SAFETY: see the module docs: the file sits where the binary's own files do, is named
    // for this exact component, and wasmtime checks it was made by this wasmtime with this
    // engine configuration.
    match unsafe { Component::deserialize_file(engine, &path) } {
        Ok(component) => Ok((component, path)),
        Err(e) => Err(format!(
            "{} is not usable ({e}); run `azmi precompile` again",
            path.display()
        )),
    }
}

/// Compiles every embedded build for this machine's engine and writes each into `dir`
/// (atomically: a reader never sees half a file). Returns each path and its size.
pub fn precompile(dir: &Path) -> anyhow::Result<Vec<(PathBuf, usize)>> {
    let engine = Host::new_engine()?;
    let mut written = Vec::new();
    for build in Build::ALL {
        let bytes = engine.precompile_component(build.bytes())?;
        let path = dir.join(build.file_name());
        let partial = dir.join(format!(".{}.partial", build.file_name()));
        std::fs::write(&partial, &bytes)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", partial.display()))?;
        std::fs::rename(&partial, &path)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        written.push((path, bytes.len()));
    }
    // Files made from earlier builds are never loaded again (their names carry another
    // fingerprint): remove them.
    let current: Vec<String> = Build::ALL.iter().map(|b| b.file_name()).collect();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("azmi-") && name.ends_with(".cwasm") && !current.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(written)
}
