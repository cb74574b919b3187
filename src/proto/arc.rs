//! Azure Arc challenge rules: the realm path is validated and rebuilt *before* the host is
//! asked to read anything (the CVE-2024-35255 class of bug).
//!
//! # The challenge flow
//!
//! 1. `GET <IDENTITY_ENDPOINT>?api-version=2020-06-01&resource=…[&client_id|object_id|msi_res_id=…]`
//!    with `Metadata: true` (older SDKs used `2019-11-01` or `2019-08-15`).
//! 2. The agent (HIMDS) answers **401** with `WWW-Authenticate: Basic realm=<path>`, having just
//!    written a one-time secret into that file.
//! 3. The path is checked and rebuilt by [`key_path`]; only then does the host read the file,
//!    capped at [`ARC_KEY_MAX_BYTES`] and without following a symbolic link
//!    ([`crate::proto::files::FileRead`]).
//! 4. The same request again, plus `Authorization: Basic <file contents>` ([`authorization`]):
//!    the contents are sent verbatim, not base64-encoded.
//! 5. The token is parsed; for a user-assigned request the response must echo the requested
//!    id (below).
//!
//! Exactly **one** challenge round trip per token request: a second 401 (the agent refused the
//! key from its own challenge) is an error, not a loop. If the first answer is not a 401, a 2xx
//! token is accepted as it is (msal-node's behaviour; MSAL Go insists on the 401), and any
//! other status is an ordinary failure, retried per [`crate::proto::retry`] but never mistaken
//! for a challenge. The state machine that runs these steps is [`crate::proto::Acquisition`].
//!
//! # Key-file rules
//!
//! The header must be `Basic realm=<path>` (the `Basic realm=` prefix compared
//! case-insensitively, as MSAL Python does; optional quotes around the path are dropped). Then:
//!
//! | check | rule | SDK precedent |
//! |---|---|---|
//! | absolute Linux path | starts with `/`, no `\`, no NUL | msal-node and MSAL Go support only Linux and Windows paths; azmi only Linux |
//! | directory | the parent, taken literally (no `.`/`..` segment, no `//`), must equal [`ARC_KEY_DIR`] | MSAL Go compares `filepath.Dir` of the cleaned path; msal-node compares strings |
//! | file name | ends in `.key` and is more than just `.key`, not a hidden file | msal-node `invalid_file_extension`, MSAL Go |
//! | path actually read | rebuilt as `<ARC_KEY_DIR>/<basename>` | MSAL Python rebuilds the path from the basename |
//! | symbolic link | refused (the host opens the file without following one) | none of the SDKs: a link inside the directory could point anywhere |
//! | size | ≤ 4096 bytes, by stat **and** by a capped read (and checked again by the core) | the SDKs check the size reported by stat |
//! | contents | non-empty printable ASCII, usable as a header value; never quoted in messages | — |
//!
//! Why: before the 2024 fixes (CVE-2024-35255, GHSA-m5vv-6r4h-3vj9; fixed in @azure/identity
//! 4.2.1 and azure-identity 1.16.1 among others) anyone able to set `IDENTITY_ENDPOINT` or to
//! answer on it could make the client read an arbitrary local file and send its contents as a
//! credential. Each SDK now does part of the checks above; azmi does all of them, validates
//! *before* asking the host to read, and only ever asks for a file in the key directory. The
//! Windows directory (`%ProgramData%\AzureConnectedMachineAgent\Tokens`) is not supported:
//! a WASI guest sees Linux-style preopens only. Every failure here is
//! [`crate::proto::ErrorKind::Security`]: never fall through to another identity.
//!
//! # User-assigned identities (fail closed)
//!
//! The selector is forwarded as `client_id`, `object_id` or `msi_res_id` (Arc ignores
//! `mi_res_id`). A success response must echo the same value — `client_id`, `object_id`, or
//! `msi_res_id` falling back to `mi_res_id` — compared case-insensitively; a missing or
//! different echo is an error ([`crate::proto::response::parse_token`]), because an agent too
//! old to know user-assigned identities silently returns the system identity. msal-node ≥ 5.6,
//! MSAL Go 1.9 and MSAL Python 1.39 do the same check with the same message; older versions
//! refused user-assigned ids on Arc. An error response is reported as the service's error, not
//! as "not confirmed".

use super::error::{Error, ErrorKind};
use super::source::Source;

/// The only directory Arc key files may come from (the Linux agent's; the Windows agent uses
/// `%ProgramData%\AzureConnectedMachineAgent\Tokens`, not supported).
pub const ARC_KEY_DIR: &str = "/var/opt/azcmagent/tokens";
/// Largest key file accepted, by stat and by read (4096 bytes, the limit of every SDK).
pub(super) const ARC_KEY_MAX_BYTES: usize = 4096;
/// Longest realm text quoted in a message.
const MAX_QUOTED: usize = 120;

fn security(message: String) -> Error {
    Error::new(ErrorKind::Security, Some(Source::AzureArc), message)
}

/// The key-file path to read for a `WWW-Authenticate` value: `<ARC_KEY_DIR>/<name>.key`,
/// rebuilt from the basename after checking the whole path (MSAL Python rebuilds; MSAL Go
/// checks the directory; azmi does both).
pub(super) fn key_path(www_authenticate: Option<&str>) -> Result<String, Error> {
    let Some(header) = www_authenticate else {
        return Err(security(
            "Azure Arc: the 401 challenge has no WWW-Authenticate header; the agent is not answering as Azure Arc does, check IDENTITY_ENDPOINT".into(),
        ));
    };
    let header = header.trim();
    const PREFIX: &str = "basic realm=";
    let realm = header
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .map(|_| header[PREFIX.len()..].trim().trim_matches('"'))
        .ok_or_else(|| {
            security(format!(
                "Azure Arc: unsupported WWW-Authenticate value {}; expected Basic realm=<key file>",
                quote(header)
            ))
        })?;
    let refuse = |why: &str| {
        security(format!(
            "Azure Arc: refusing the challenge key path {}: {why}; a genuine agent names a .key file in {ARC_KEY_DIR}",
            quote(realm)
        ))
    };
    if realm.contains(['\\', '\0']) || !realm.starts_with('/') {
        return Err(refuse("it is not an absolute Linux path"));
    }
    let (dir, name) = realm.rsplit_once('/').unwrap_or(("", realm));
    if dir
        .split('/')
        .any(|segment| segment == "." || segment == "..")
        || dir.contains("//")
        || dir != ARC_KEY_DIR
    {
        return Err(refuse("it is outside the Arc key directory"));
    }
    if name.len() <= ".key".len() || !name.ends_with(".key") || name.starts_with('.') {
        return Err(refuse("it is not a .key file"));
    }
    Ok(format!("{ARC_KEY_DIR}/{name}"))
}

/// The `Authorization` value for key-file `contents`, used verbatim (not base64); contents
/// that cannot be a header value are refused without quoting them.
pub(super) fn authorization(contents: &[u8]) -> Result<String, Error> {
    if contents.len() > ARC_KEY_MAX_BYTES {
        return Err(security(format!(
            "Azure Arc: the key file is larger than {ARC_KEY_MAX_BYTES} bytes; refusing it"
        )));
    }
    let text = core::str::from_utf8(contents)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| {
            security(
                "Azure Arc: the key file is empty or holds characters a header cannot carry; refusing it".into(),
            )
        })?;
    Ok(format!("Basic {text}"))
}

fn quote(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_QUOTED)
        .collect();
    if text.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_realm_is_rebuilt_from_the_basename() {
        assert_eq!(
            key_path(Some("Basic realm=/var/opt/azcmagent/tokens/abc.key")).unwrap(),
            "/var/opt/azcmagent/tokens/abc.key"
        );
        assert_eq!(
            key_path(Some("basic REALM=\"/var/opt/azcmagent/tokens/abc.key\"")).unwrap(),
            "/var/opt/azcmagent/tokens/abc.key"
        );
    }

    #[test]
    fn realm_outside_the_directory_is_refused() {
        for realm in [
            "/etc/shadow",
            "/var/opt/azcmagent/tokens/../../../etc/passwd.key",
            "/var/opt/azcmagent/tokens/./x.key",
            "/var/opt/azcmagent//tokens/x.key",
            "/var/opt/azcmagent/tokens/sub/x.key",
            "/var/opt/azcmagent/tokens2/x.key",
            "var/opt/azcmagent/tokens/x.key",
            "C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\x.key",
            "/var/opt/azcmagent/tokens/x.txt",
            "/var/opt/azcmagent/tokens/.key",
            "/var/opt/azcmagent/tokens/",
        ] {
            let error = key_path(Some(&format!("Basic realm={realm}"))).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Security, "{realm}");
        }
    }

    #[test]
    fn missing_or_foreign_header_is_refused() {
        assert_eq!(key_path(None).unwrap_err().kind(), ErrorKind::Security);
        assert_eq!(
            key_path(Some("Bearer realm=x")).unwrap_err().kind(),
            ErrorKind::Security
        );
    }

    #[test]
    fn key_contents_are_checked_and_never_quoted() {
        assert_eq!(authorization(b"s3cr3t").unwrap(), "Basic s3cr3t");
        for bad in [&b""[..], b"s3cr3t\r\nX-Evil: 1", b"\xff\xfe"] {
            let error = authorization(bad).unwrap_err();
            assert!(!error.message().contains("s3cr3t"), "{error}");
        }
        assert!(authorization(&[b'a'; ARC_KEY_MAX_BYTES + 1]).is_err());
    }
}
