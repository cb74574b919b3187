//! Secret values the core holds for a moment (the App Service / Service Fabric shared secret,
//! the Arc challenge key, the workload federated token) and the scrubbing that keeps them out
//! of everything a caller can see.
//!
//! The rule: a secret never appears in `Debug` output, an error message, an error code or a
//! correlation id. Managed-identity endpoints have been seen echoing the request's secret in
//! their error text, so every service-derived byte is scrubbed before it is parsed or quoted
//! (quoting cuts long text, and a cut-off secret is no longer recognisable), and every message
//! is redacted again before it leaves the core ([`crate::proto::Error`]'s `redact`).

/// A secret value — a shared secret (`IDENTITY_HEADER`, `MSI_SECRET`), an Azure Arc challenge
/// key or a federated token — whose `Debug` shows only its length, so that deriving `Debug` on
/// anything that holds it cannot leak it. Secrets never appear in `Debug` output, in error
/// messages (service text is scrubbed of them before it is quoted) or in logs; request headers
/// and bodies that carry them are marked sensitive for the adapter. The access token gets the
/// same treatment in `AccessToken`'s `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "<{} bytes redacted>", self.0.len())
    }
}

/// Secrets shorter than this are not searched for: they would match ordinary text.
pub(crate) const MIN_REDACTED_LEN: usize = 4;

/// `body` with every occurrence of every secret replaced by `<redacted>`.
pub(crate) fn scrub(mut body: Vec<u8>, secrets: &[Secret]) -> Vec<u8> {
    for secret in secrets {
        let needle = secret.0.as_bytes();
        if needle.len() < MIN_REDACTED_LEN || !body.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        let mut out = Vec::with_capacity(body.len());
        let mut rest = body.as_slice();
        while !rest.is_empty() {
            if rest.starts_with(needle) {
                out.extend_from_slice(b"<redacted>");
                rest = &rest[needle.len()..];
            } else {
                out.push(rest[0]);
                rest = &rest[1..];
            }
        }
        body = out;
    }
    body
}

/// `text` with every secret replaced by `<redacted>`: for service text decoded from JSON, where
/// an escaped echo (`\u0073…`) that [`scrub`] could not see becomes the secret again. Runs
/// before any quoting cuts the text (a cut-off secret is no longer recognisable).
pub(crate) fn redact_text(text: &str, secrets: &[Secret]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if secret.0.len() >= MIN_REDACTED_LEN && out.contains(&secret.0) {
            out = out.replace(&secret.0, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_every_occurrence_and_skips_short_values() {
        let secrets = [Secret("s3cr3t".into()), Secret("ab".into())];
        let out = scrub(b"x s3cr3t y s3cr3ts3cr3t ab".to_vec(), &secrets);
        assert_eq!(out, b"x <redacted> y <redacted><redacted> ab");
    }

    #[test]
    fn redact_text_replaces_every_secret_and_skips_short_values() {
        let secrets = [Secret("s3cr3t".into()), Secret("ab".into())];
        assert_eq!(
            redact_text("s3cr3t ab s3cr3t", &secrets),
            "<redacted> ab <redacted>"
        );
    }

    #[test]
    fn debug_shows_only_the_length() {
        assert_eq!(
            format!("{:?}", Secret("hunter22".into())),
            "<8 bytes redacted>"
        );
    }
}
