//! Azure Arc challenge rules (§9, §14 rules 11–13): the realm path is validated and rebuilt
//! *before* the host is asked to read anything (the CVE-2024-35255 class of bug).

use super::error::{Error, ErrorKind};
use super::source::Source;

/// The only directory Arc key files may come from (Linux; §9.3, Appendix A).
pub const ARC_KEY_DIR: &str = "/var/opt/azcmagent/tokens";
/// Largest key file accepted, by stat and by read (§9.3).
pub const ARC_KEY_MAX_BYTES: usize = 4096;
/// Longest realm text quoted in a message.
const MAX_QUOTED: usize = 120;

fn security(message: String) -> Error {
    Error::new(ErrorKind::Security, Some(Source::AzureArc), message)
}

/// The key-file path to read for a `WWW-Authenticate` value: `<ARC_KEY_DIR>/<name>.key`,
/// rebuilt from the basename after checking the whole path (MSAL Python rebuilds; MSAL Go
/// checks the directory; azmi does both).
pub fn key_path(www_authenticate: Option<&str>) -> Result<String, Error> {
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

/// The `Authorization` value for key-file `contents`, used verbatim (§9.1 step 4); contents
/// that cannot be a header value are refused without quoting them.
pub fn authorization(contents: &[u8]) -> Result<String, Error> {
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
