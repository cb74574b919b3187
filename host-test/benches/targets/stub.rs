//! A stand-in component that does no work, to split the real component's cost into
//! boundary and guest. Its exports, each cheaper than the next:
//!
//! - `nop: func() -> u32`: entering and leaving the instance;
//! - `take-scope: func(scope: string) -> u32`: plus lowering the scope (a `realloc` call
//!   into the guest and a copy);
//! - `get-token`: exactly azmi's signature, returning a token laid out in the data segment
//!   (plus lifting the record and its two strings);
//! - `get-token-clock`: the same after one `wasi:clocks/wall-clock.now` call, the one
//!   import azmi's cached path makes.

use std::fmt::Write;

/// Where the canonical-ABI result lives in the stub's memory.
const RESULT: u32 = 0;
/// The `token-type` string.
const TOKEN_TYPE: u32 = 64;
/// Where the clock's answer is written.
const CLOCK_OUT: u32 = 512;
/// The token string.
const TOKEN: u32 = 1024;

/// The stub's WAT: `get-token` returns `Ok` with `token`, `expires_on`, `refresh-on` and
/// `Bearer`.
pub fn wat(token: &str, expires_on: u64, refresh_on: u64) -> String {
    assert!(
        TOKEN as usize + token.len() < 60_000,
        "token too long for the stub"
    );
    let mut result = [0u8; 56];
    result[8..12].copy_from_slice(&TOKEN.to_le_bytes());
    result[12..16].copy_from_slice(&(token.len() as u32).to_le_bytes());
    result[16..24].copy_from_slice(&expires_on.to_le_bytes());
    result[24] = 1;
    result[32..40].copy_from_slice(&refresh_on.to_le_bytes());
    result[40..44].copy_from_slice(&TOKEN_TYPE.to_le_bytes());
    result[44..48].copy_from_slice(&6u32.to_le_bytes());
    format!(
        r#"(component
  (import "wasi:clocks/wall-clock@0.2.12" (instance $clock
    (type $dt (record (field "seconds" u64) (field "nanoseconds" u32)))
    (export "datetime" (type $datetime (eq $dt)))
    (export "now" (func (result $datetime)))))
  (type $source' (enum "imds" "app-service" "app-service-2017" "azure-ml" "cloud-shell" "azure-arc" "service-fabric" "workload-identity" "client-secret" "client-certificate"))
  (export $source "source" (type $source'))
  (type $selector' (variant (case "system-assigned") (case "client-id" string) (case "object-id" string) (case "resource-id" string)))
  (export $selector "identity-selector" (type $selector'))
  (type $token' (record (field "token" string) (field "expires-on" u64) (field "refresh-on" (option u64)) (field "token-type" string) (field "source" $source)))
  (export $token "access-token" (type $token'))
  (type $info' (record (field "message" string) (field "source" (option $source)) (field "status" (option u16)) (field "code" (option string)) (field "correlation-id" (option string))))
  (export $info "error-info" (type $info'))
  (type $error' (variant (case "credential-unavailable" $info) (case "authentication-failed" $info) (case "invalid-argument" string)))
  (export $error "error" (type $error'))
  (core module $mem (memory (export "memory") 1))
  (core instance $mi (instantiate $mem))
  (core func $now (canon lower (func $clock "now") (memory (core memory $mi "memory"))))
  (core module $m
    (import "env" "memory" (memory 1))
    (import "env" "now" (func $now (param i32)))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 60000))
    (func (export "nop") (result i32) (i32.const 0))
    (func (export "take-scope") (param i32 i32) (result i32) (i32.const 0))
    (func (export "get-token") (param i32 i32 i32 i32 i32) (result i32) (i32.const {RESULT}))
    (func (export "get-token-clock") (param i32 i32 i32 i32 i32) (result i32)
      (call $now (i32.const {CLOCK_OUT})) (i32.const {RESULT}))
    (data (i32.const {RESULT}) "{result}")
    (data (i32.const {TOKEN_TYPE}) "Bearer")
    (data (i32.const {TOKEN}) "{token}"))
  (core instance $i (instantiate $m (with "env" (instance (export "memory" (memory $mi "memory")) (export "now" (func $now))))))
  (func (export "nop") (result u32) (canon lift (core func $i "nop")))
  (func (export "take-scope") (param "scope" string) (result u32)
    (canon lift (core func $i "take-scope") (memory (core memory $mi "memory")) (realloc (core func $i "realloc"))))
  (func (export "get-token") (param "scope" string) (param "identity" $selector) (result (result $token (error $error)))
    (canon lift (core func $i "get-token") (memory (core memory $mi "memory")) (realloc (core func $i "realloc"))))
  (func (export "get-token-clock") (param "scope" string) (param "identity" $selector) (result (result $token (error $error)))
    (canon lift (core func $i "get-token-clock") (memory (core memory $mi "memory")) (realloc (core func $i "realloc")))))"#,
        result = escape(&result),
        token = escape(token.as_bytes()),
    )
}

/// Bytes as a WAT string literal body (`\hh` each).
fn escape(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "\\{b:02x}");
        out
    })
}
