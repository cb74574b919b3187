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

/// Where the secrets occur in `text`: every occurrence of every secret, overlapping or nested
/// ones merged into one span, in order. Found all at once on the original text, so that
/// redacting one secret cannot cut another that contains or overlaps it (which would leave a
/// piece of it behind).
fn spans(text: &[u8], secrets: &[Secret]) -> Vec<(usize, usize)> {
    let mut found: Vec<(usize, usize)> = Vec::new();
    for needle in secrets.iter().map(|s| s.0.as_bytes()) {
        if needle.len() < MIN_REDACTED_LEN || needle.len() > text.len() {
            continue;
        }
        found.extend(
            text.windows(needle.len())
                .enumerate()
                .filter(|(_, w)| *w == needle)
                .map(|(i, _)| (i, i + needle.len())),
        );
    }
    found.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
    for (start, end) in found {
        match merged.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `text` with each span replaced by `<redacted>`.
fn replace_spans(text: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in spans {
        out.extend_from_slice(&text[at..start]);
        out.extend_from_slice(b"<redacted>");
        at = end;
    }
    out.extend_from_slice(&text[at..]);
    out
}

/// `body` with every occurrence of every secret replaced by `<redacted>`.
pub(crate) fn scrub(body: Vec<u8>, secrets: &[Secret]) -> Vec<u8> {
    let spans = spans(&body, secrets);
    if spans.is_empty() {
        return body;
    }
    replace_spans(&body, &spans)
}

/// `text` with every secret replaced by `<redacted>`: for service text decoded from JSON, where
/// an escaped echo (`\u0073…`) that [`scrub`] could not see becomes the secret again. Runs
/// before any quoting cuts the text (a cut-off secret is no longer recognisable).
pub(crate) fn redact_text(text: &str, secrets: &[Secret]) -> String {
    let spans = spans(text.as_bytes(), secrets);
    if spans.is_empty() {
        return text.to_string();
    }
    // Secrets are whole UTF-8 strings, so every span starts and ends on a character boundary.
    String::from_utf8_lossy(&replace_spans(text.as_bytes(), &spans)).into_owned()
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

    /// Found by the `acquisition` fuzz target (seed
    /// `acquisition/overlapping-secrets-scrubbed-in-turn`): a workload fetch that re-read a
    /// changed token file held two secrets, the first a piece of the second; scrubbing them one
    /// after the other cut the second's echo and left most of it in the message.
    #[test]
    fn scrub_redacts_a_secret_that_contains_another_secret_whole() {
        let secrets = [Secret("J0eQ".into()), Secret("eyJhbGci.c2lnJ0eQ".into())];
        let out = scrub(b"echo eyJhbGci.c2lnJ0eQ!".to_vec(), &secrets);
        assert_eq!(out, b"echo <redacted>!");
        assert_eq!(
            redact_text("echo eyJhbGci.c2lnJ0eQ!", &secrets),
            "echo <redacted>!"
        );
    }

    /// Two secrets that overlap in the text (one's end is the other's start) are redacted as
    /// one span: neither leaves a piece behind.
    #[test]
    fn scrub_redacts_overlapping_secrets_as_one_span() {
        let secrets = [Secret("abcdef".into()), Secret("defghi".into())];
        assert_eq!(
            scrub(b"x abcdefghi y".to_vec(), &secrets),
            b"x <redacted> y"
        );
        assert_eq!(redact_text("x abcdefghi y", &secrets), "x <redacted> y");
    }

    #[test]
    fn debug_shows_only_the_length() {
        assert_eq!(
            format!("{:?}", Secret("hunter22".into())),
            "<8 bytes redacted>"
        );
    }
}
