//! Rows 4 and 5: the shipped components' sizes (`target/shipped/`, made by `just component`),
//! and what each part of azmi.wasm costs: its core modules' code, data and custom sections,
//! and the component's own sections (types, imports, canonical ABI glue). A minimal reader of
//! the binary format's section headers, no parser dependency.

use std::path::{Path, PathBuf};

/// The shipped azmi.wasm's budget, bytes (150 KB, decimal: the stricter reading).
pub const SHIPPED_BUDGET: usize = 150_000;
/// The shared-cache build's budget over the shipped one.
pub const SHARED_EXTRA: usize = 60_000;
/// The certificate build's budget over the shipped one.
pub const CERTIFICATE_EXTRA: usize = 340_000;

/// The three shipped files, or why they are missing.
pub struct Sizes {
    /// `azmi.wasm`.
    pub shipped: Result<usize, String>,
    /// `azmi-shared.wasm`.
    pub shared: Result<usize, String>,
    /// `azmi-certificate.wasm`.
    pub certificate: Result<usize, String>,
    /// azmi.wasm's parts, largest first: (what, bytes).
    pub parts: Vec<(String, usize)>,
}

/// Where `just component` puts the shipped builds.
pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/shipped")
}

/// Reads the three files from [`shipped_dir`].
pub fn measure() -> Sizes {
    let dir = shipped_dir();
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .map_err(|e| format!("no {}/{name} ({e}): run `just component`", dir.display()))
    };
    let shipped = read("azmi.wasm");
    let parts = shipped.as_deref().map(parts).unwrap_or_default();
    let len = |r: Result<Vec<u8>, String>| r.map(|b| b.len());
    Sizes {
        shipped: len(shipped),
        shared: len(read("azmi-shared.wasm")),
        certificate: len(read("azmi-certificate.wasm")),
        parts,
    }
}

/// `wasm`'s bytes by part: each core module's sections by kind (custom ones by name), and the
/// component's own sections together; largest first.
pub fn parts(wasm: &[u8]) -> Vec<(String, usize)> {
    let mut parts: Vec<(String, usize)> = Vec::new();
    let mut add = |name: String, bytes: usize| match parts.iter_mut().find(|(n, _)| *n == name) {
        Some((_, total)) => *total += bytes,
        None => parts.push((name, bytes)),
    };
    for (id, body, whole) in sections(wasm) {
        match id {
            1 => {
                for (id, body, whole) in sections(body) {
                    add(core_section(id, body), whole);
                }
            }
            0 => add(format!("custom {}", custom_name(body)), whole),
            _ => add(
                "component sections (types, imports, canon glue)".into(),
                whole,
            ),
        }
    }
    parts.sort_by_key(|part| std::cmp::Reverse(part.1));
    parts
}

/// What a core module section holds.
fn core_section(id: u8, body: &[u8]) -> String {
    match id {
        0 => format!("core custom {}", custom_name(body)),
        10 => "core code".into(),
        11 => "core data".into(),
        2 => "core imports".into(),
        7 => "core exports".into(),
        _ => "core other (types, functions, tables, globals, elements)".into(),
    }
}

/// A custom section's name.
fn custom_name(body: &[u8]) -> String {
    leb(body)
        .and_then(|(len, used)| body.get(used..used + len as usize))
        .map_or_else(|| "?".into(), |n| String::from_utf8_lossy(n).into_owned())
}

/// The sections of a module or component: (id, body, bytes including the header).
fn sections(wasm: &[u8]) -> Vec<(u8, &[u8], usize)> {
    let mut out = Vec::new();
    let mut at = 8; // magic and version
    while at < wasm.len() {
        let id = wasm[at];
        let Some((len, used)) = leb(&wasm[at + 1..]) else {
            break;
        };
        let start = at + 1 + used;
        let Some(body) = wasm.get(start..start + len as usize) else {
            break;
        };
        out.push((id, body, 1 + used + body.len()));
        at = start + body.len();
    }
    out
}

/// An unsigned LEB128 number and the bytes it used.
fn leb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}
