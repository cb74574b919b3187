//! Every message a token fetch can end with, written once: the state machine says *what*
//! happened, these constructors say it to the user, with the fix.

use super::{Error, ErrorKind};
use crate::proto::files::{FileError, FileErrorKind};
use crate::proto::http::{TransportError, TransportErrorKind};
use crate::proto::source::Source;

/// The messages of a token fetch: written once here, so the state machine says *what*
/// happened and this says it to the user, with the fix. `endpoint` is
/// `scheme://authority (VARIABLE)`, naming the variable that chose it.
impl Error {
    /// The IMDS probe was answered by a proxy's "unreachable" 403 (Docker Desktop does this):
    /// no managed identity behind it.
    pub(crate) fn probe_proxy_unreachable(source: Source, endpoint: &str) -> Self {
        Self::new(
            ErrorKind::Unavailable,
            Some(source),
            format!(
                "IMDS: the availability probe of {endpoint} was answered by a proxy (403 unreachable); no managed identity is reachable here"
            ),
        )
    }

    /// The IMDS probe got no HTTP answer at all.
    pub(crate) fn probe_no_answer(source: Source, endpoint: &str, detail: &str) -> Self {
        Self::new(
            ErrorKind::Unavailable,
            Some(source),
            format!(
                "IMDS: the availability probe got no answer from {endpoint}: {detail}; no managed identity is reachable here"
            ),
        )
    }

    /// The Arc agent answered the request carrying its own challenge key with a second 401.
    pub(crate) fn arc_second_challenge(source: Source) -> Self {
        Self::new(
            ErrorKind::Security,
            Some(source),
            "Azure Arc: the agent refused the key from its own challenge (a second 401); restart the Arc agent (himds)",
        )
        .with_service(Some(401), None, None)
    }

    /// A request got no response. Before the source ever answered this credential, that means
    /// no managed identity is here (unavailable); after, it is a transport failure.
    pub(crate) fn no_response(
        source: Source,
        endpoint: &str,
        error: &TransportError,
        answered_before: bool,
    ) -> Self {
        let detail = &error.detail;
        let (kind, message) = match error.kind {
            TransportErrorKind::ResponseTooLarge => (
                ErrorKind::InvalidResponse,
                format!(
                    "{source}: the response was larger than the 1 MiB limit ({detail}); this is not a managed-identity endpoint"
                ),
            ),
            TransportErrorKind::Tls => (
                ErrorKind::Unavailable,
                format!(
                    "{source}: the TLS certificate of {endpoint} was not accepted ({detail}); trust its CA through the host (the azmi CLI reads SSL_CERT_FILE)"
                ),
            ),
            TransportErrorKind::Denied => (
                ErrorKind::Unavailable,
                format!(
                    "{source}: the host refused to connect to {endpoint}: {detail}; allow the endpoint in the host's outbound HTTP policy"
                ),
            ),
            _ if answered_before => (
                ErrorKind::Transport,
                format!(
                    "{source}: no response from {endpoint}: {detail}, though it answered before; retry later"
                ),
            ),
            _ => (
                ErrorKind::Unavailable,
                format!(
                    "{source}: no response from {endpoint}: {detail}; no managed identity is reachable here"
                ),
            ),
        };
        Self::new(kind, Some(source), message)
    }

    /// A request's deadline passed without an answer (same classification as
    /// [`Error::no_response`]).
    pub(crate) fn timed_out(source: Source, endpoint: &str, answered_before: bool) -> Self {
        let (kind, tail) = if answered_before {
            (
                ErrorKind::Transport,
                ", though it answered before; retry later",
            )
        } else {
            (
                ErrorKind::Unavailable,
                "; no managed identity is reachable here",
            )
        };
        Self::new(
            kind,
            Some(source),
            format!("{source}: {endpoint} did not answer in time{tail}"),
        )
    }

    /// A file the fetch needs could not be read: the Arc key (`arc_key_dir` is then the
    /// directory it must come from) or the federated token. A missing, oversized or
    /// non-regular Arc key is a security failure.
    pub(crate) fn file(source: Source, arc_key_dir: Option<&str>, error: FileError) -> Self {
        let (what, directory) = match arc_key_dir {
            Some(dir) => ("the Arc key file", dir),
            None => ("AZURE_FEDERATED_TOKEN_FILE", "its directory"),
        };
        let suspicious = if arc_key_dir.is_some() {
            ErrorKind::Security
        } else {
            ErrorKind::Configuration
        };
        let (kind, why) = match error.kind {
            FileErrorKind::NotFound => (
                suspicious,
                format!("{what} does not exist ({})", error.detail),
            ),
            FileErrorKind::TooLarge => (
                suspicious,
                format!("{what} is larger than allowed; refusing it"),
            ),
            FileErrorKind::NotRegularFile => (
                suspicious,
                format!("{what} is not a regular file (an Arc key must not be a symbolic link)"),
            ),
            FileErrorKind::NoAccess => (
                ErrorKind::Configuration,
                format!(
                    "the host gives no read access to {what}; preopen {directory} read-only (the azmi CLI does when it exists)"
                ),
            ),
            FileErrorKind::Other => (
                ErrorKind::Configuration,
                format!("{what} could not be read ({})", error.detail),
            ),
        };
        Self::new(kind, Some(source), format!("{source}: {why}"))
    }

    /// The source needs a file, and the host (proxy-wasm) has no file access. Never falls
    /// back to IMDS: the platform said it is something else.
    pub(crate) fn needs_files(source: Source) -> Self {
        let what = match source {
            Source::AzureArc => "the Arc challenge key",
            Source::ClientCertificate => "AZURE_CLIENT_CERTIFICATE_PATH",
            _ => "AZURE_FEDERATED_TOKEN_FILE",
        };
        Self::new(
            ErrorKind::Unavailable,
            Some(source),
            format!(
                "{source} needs to read a file ({what}), which this host cannot do (it has no file access); run the azmi component in a host with wasi:filesystem"
            ),
        )
    }

    /// Workload identity is configured without a client id.
    pub(crate) fn workload_needs_client_id() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            Some(Source::WorkloadIdentity),
            "workload identity needs a client id: set AZURE_CLIENT_ID or pass a client id",
        )
    }

    /// Adds why the retries stopped: `retries_used + 1` attempts were made, and either the
    /// policy allows no more or the next one would pass the call's deadline.
    pub(crate) fn gave_up(mut self, attempts: u32, past_deadline: bool) -> Self {
        let attempts = match attempts {
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        if past_deadline {
            self.append(&format!(
                " (gave up after {attempts}: the next one would pass the call's deadline)"
            ));
        } else {
            self.append(&format!(" (gave up after {attempts})"));
        }
        self
    }

    /// Adds that this answer is remembered and repeated for `seconds` more.
    pub(crate) fn remembered(mut self, seconds: u64) -> Self {
        self.append(&format!(" (remembered: not asking again for {seconds} s)"));
        self
    }
}
