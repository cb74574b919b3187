//! The WASI 0.2 component: exports `azmi:identity/credential` and
//! `azmi:identity/default-credential`, keeps the cache (and the chain's choice) in the
//! instance, and maps core values to and from WIT.

use crate::drive::Io;
use crate::proto::{
    self, DefaultChain, EnvSnapshot, ErrorClass, FileError, FileRead, HostFacts, HttpRequest,
    HttpResponse, IdentitySelector, Level, Link, ManagedIdentity, Source, TokenRequest,
    TransportError, UnixMillis, is_managed_identity_variable,
};
use crate::wasi_http::{sleep_until, wall_clock_now};
use bindings::azmi::identity::types as wit;
use bindings::exports::azmi::identity::credential::Guest;
use bindings::exports::azmi::identity::default_credential::Guest as DefaultGuest;
use std::cell::RefCell;

#[cfg(feature = "shared-cache")]
mod shared;

#[allow(unsafe_code, missing_docs)]
mod bindings {
    #[cfg(not(feature = "shared-cache"))]
    wit_bindgen::generate!({
        path: "wit",
        world: "managed-identity",
        with: {
            "wasi:http/types@0.2.12": wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasi::http::outgoing_handler,
            "wasi:io/error@0.2.12": wasi::io::error,
            "wasi:io/poll@0.2.12": wasi::io::poll,
            "wasi:io/streams@0.2.12": wasi::io::streams,
            "wasi:cli/environment@0.2.12": wasi::cli::environment,
            "wasi:clocks/wall-clock@0.2.12": wasi::clocks::wall_clock,
            "wasi:clocks/monotonic-clock@0.2.12": wasi::clocks::monotonic_clock,
            "wasi:random/random@0.2.12": wasi::random::random,
            "wasi:filesystem/types@0.2.12": wasi::filesystem::types,
            "wasi:filesystem/preopens@0.2.12": wasi::filesystem::preopens,
            "wasi:cli/stderr@0.2.12": wasi::cli::stderr,
        },
    });

    #[cfg(feature = "shared-cache")]
    wit_bindgen::generate!({
        path: "wit",
        world: "managed-identity-shared",
        with: {
            "wasi:http/types@0.2.12": ::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": ::wasi::http::outgoing_handler,
            "wasi:io/error@0.2.12": ::wasi::io::error,
            "wasi:io/poll@0.2.12": ::wasi::io::poll,
            "wasi:io/streams@0.2.12": ::wasi::io::streams,
            "wasi:cli/environment@0.2.12": ::wasi::cli::environment,
            "wasi:clocks/wall-clock@0.2.12": ::wasi::clocks::wall_clock,
            "wasi:clocks/monotonic-clock@0.2.12": ::wasi::clocks::monotonic_clock,
            "wasi:random/random@0.2.12": ::wasi::random::random,
            "wasi:filesystem/types@0.2.12": ::wasi::filesystem::types,
            "wasi:filesystem/preopens@0.2.12": ::wasi::filesystem::preopens,
            "wasi:cli/stderr@0.2.12": ::wasi::cli::stderr,
            "wasi:keyvalue/store@0.2.0-draft2": generate,
            "wasi:keyvalue/atomics@0.2.0-draft2": generate,
        },
    });

    use super::Component;
    export!(Component);
}

thread_local! {
    /// The instance's credential: one per component instance, so repeat calls hit the cache.
    /// `default-credential` shares it (its links' tokens are cached under their own sources).
    static CREDENTIAL: RefCell<ManagedIdentity> = RefCell::new(ManagedIdentity::new());
    /// Which link of the default chain answered first.
    static CHAIN: RefCell<DefaultChain> = RefCell::new(DefaultChain::new());
    /// The diagnostics level, read from the environment on first use.
    static LOG_LEVEL: std::cell::OnceCell<Option<Level>> = const { std::cell::OnceCell::new() };
}

struct Component;

impl Guest for Component {
    fn get_token(
        scope: String,
        identity: wit::IdentitySelector,
    ) -> Result<wit::AccessToken, wit::Error> {
        let selector = from_wit_selector(identity);
        CREDENTIAL
            .with_borrow_mut(|credential| {
                get_token(
                    credential,
                    &TokenRequest::new(&scope, &selector),
                    to_wit_token,
                )
            })
            .map_err(to_wit_error)
    }

    fn get_token_with(mut request: wit::TokenRequest) -> Result<wit::AccessToken, wit::Error> {
        let selector = take_selector(&mut request);
        let options = from_wit_request(&request, &selector);
        CREDENTIAL
            .with_borrow_mut(|credential| get_token(credential, &options, to_wit_token))
            .map_err(to_wit_error)
    }
}

impl DefaultGuest for Component {
    fn get_token(scope: String) -> Result<wit::AccessToken, wit::Error> {
        let selector = IdentitySelector::SystemAssigned;
        get_token_default(&TokenRequest::new(&scope, &selector))
    }

    fn get_token_with(mut request: wit::TokenRequest) -> Result<wit::AccessToken, wit::Error> {
        let selector = take_selector(&mut request);
        get_token_default(&from_wit_request(&request, &selector))
    }
}

/// The core's view of a WIT `token-request` whose identity is `selector`.
fn from_wit_request<'a>(
    request: &'a wit::TokenRequest,
    selector: &'a IdentitySelector,
) -> TokenRequest<'a> {
    TokenRequest {
        scope: &request.scope,
        selector,
        force_refresh: request.force_refresh,
        claims: request.claims.as_deref(),
        client_capabilities: &request.client_capabilities,
        timeout_ms: request.timeout_ms,
        probe: request.probe,
        credential: Link::ManagedIdentity,
    }
}

/// One call through the default chain, each link on the component's usual path.
fn get_token_default(request: &TokenRequest<'_>) -> Result<wit::AccessToken, wit::Error> {
    CHAIN
        .with_borrow_mut(|chain| {
            CREDENTIAL.with_borrow_mut(|credential| {
                crate::drive::get_token_default(
                    credential,
                    chain,
                    request,
                    &mut WasiIo,
                    |credential, call, _| get_token(credential, call, to_wit_token),
                )
            })
        })
        .map_err(to_wit_error)
}

/// The request's identity as the core's selector, moved out (the request keeps a
/// placeholder it no longer uses).
fn take_selector(request: &mut wit::TokenRequest) -> IdentitySelector {
    let identity = std::mem::replace(&mut request.identity, wit::IdentitySelector::SystemAssigned);
    from_wit_selector(identity)
}

fn from_wit_selector(identity: wit::IdentitySelector) -> IdentitySelector {
    match identity {
        wit::IdentitySelector::SystemAssigned => IdentitySelector::SystemAssigned,
        wit::IdentitySelector::ClientId(id) => IdentitySelector::ClientId(id),
        wit::IdentitySelector::ObjectId(id) => IdentitySelector::ObjectId(id),
        wit::IdentitySelector::ResourceId(id) => IdentitySelector::ResourceId(id),
    }
}

/// The cached path reads one clock and touches nothing else; a miss (or a due refresh)
/// snapshots the environment, detects the source and drives one fetch.
fn get_token<T>(
    credential: &mut ManagedIdentity,
    request: &TokenRequest<'_>,
    map: impl FnOnce(&proto::AccessToken) -> T,
) -> Result<T, proto::Error> {
    #[cfg(feature = "shared-cache")]
    return shared::get_token(credential, request, &mut WasiIo, map);
    #[cfg(not(feature = "shared-cache"))]
    crate::drive::get_token(credential, request, &mut WasiIo, map)
}

/// The component's host: wasi:http, wasi:clocks, wasi:filesystem, wasi:random and the
/// environment the host passes in.
struct WasiIo;

impl Io for WasiIo {
    fn now(&mut self) -> UnixMillis {
        wall_clock_now()
    }

    fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        crate::wasi_http::send(request)
    }

    fn read_file(&mut self, read: &FileRead) -> Result<Vec<u8>, FileError> {
        crate::wasi_fs::read_file(read)
    }

    fn sleep_until(&mut self, deadline: UnixMillis) {
        sleep_until(deadline);
    }

    /// Only the managed-identity variables: the core never sees the rest.
    fn env(&mut self) -> EnvSnapshot {
        EnvSnapshot::from_pairs(
            wasi::cli::environment::get_environment()
                .into_iter()
                .filter(|(k, _)| is_managed_identity_variable(k)),
        )
    }

    /// Whether the Arc agent is installed, seen through the host's read-only preopen of
    /// `/opt/azcmagent/bin` (its `himds` binary is how the SDKs detect Arc without variables).
    fn facts(&mut self) -> HostFacts {
        use wasi::filesystem::types::PathFlags;
        let arc_agent_present = wasi::filesystem::preopens::get_directories()
            .into_iter()
            .any(|(dir, path)| {
                path.trim_end_matches('/') == "/opt/azcmagent/bin"
                    && dir.stat_at(PathFlags::empty(), "himds").is_ok()
            });
        HostFacts {
            arc_agent_present,
            no_file_access: false,
        }
    }

    /// `AZURE_LOG_LEVEL`, read once per instance (the environment does not change).
    fn log_level(&mut self) -> Option<Level> {
        LOG_LEVEL.with(|level| *level.get_or_init(|| Level::from_env(&self.env())))
    }

    /// One line on `wasi:cli/stderr` (the lines never hold a token or a secret).
    fn log(&mut self, _level: Level, line: &str) {
        let stderr = wasi::cli::stderr::get_stderr();
        let line = format!("{line}\n");
        for chunk in line.as_bytes().chunks(4096) {
            if stderr.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }

    fn random(&mut self) -> [u8; 16] {
        let a = wasi::random::random::get_random_u64().to_le_bytes();
        let b = wasi::random::random::get_random_u64().to_le_bytes();
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a);
        out[8..].copy_from_slice(&b);
        out
    }
}

fn to_wit_token(token: &proto::AccessToken) -> wit::AccessToken {
    wit::AccessToken {
        token: token.secret().to_string(),
        expires_on: token.expires_on(),
        refresh_on: Some(token.refresh_on()),
        token_type: token.token_type().to_string(),
        source: to_wit_source(token.source()),
    }
}

fn to_wit_source(source: Source) -> wit::Source {
    match source {
        Source::Imds => wit::Source::Imds,
        Source::AppService => wit::Source::AppService,
        Source::AppService2017 => wit::Source::AppService2017,
        Source::AzureMl => wit::Source::AzureMl,
        Source::CloudShell => wit::Source::CloudShell,
        Source::AzureArc => wit::Source::AzureArc,
        Source::ServiceFabric => wit::Source::ServiceFabric,
        Source::WorkloadIdentity => wit::Source::WorkloadIdentity,
        Source::ClientSecret => wit::Source::ClientSecret,
        Source::ClientCertificate => wit::Source::ClientCertificate,
    }
}

fn to_wit_error(error: proto::Error) -> wit::Error {
    let info = || wit::ErrorInfo {
        message: error.message().to_string(),
        source: error.mi_source().map(to_wit_source),
        status: error.status(),
        code: error.code().map(str::to_string),
        correlation_id: error.correlation_id().map(str::to_string),
    };
    match error.class() {
        ErrorClass::CredentialUnavailable => wit::Error::CredentialUnavailable(info()),
        ErrorClass::AuthenticationFailed => wit::Error::AuthenticationFailed(info()),
        ErrorClass::InvalidArgument => wit::Error::InvalidArgument(error.message().to_string()),
    }
}
