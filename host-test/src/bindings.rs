//! Host bindings for the `azmi:identity/managed-identity` world, with every wasi import
//! provided by wasmtime-wasi and wasmtime-wasi-http.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "managed-identity",
    exports: { default: async },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:cli": wasmtime_wasi::p2::bindings::cli,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
        "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
    require_store_data_send: true,
});

use ::azmi::error_report::ErrorReport;

pub use self::azmi::identity::types::{
    AccessToken, Error, ErrorInfo, IdentitySelector, Source, TokenRequest,
};

impl TokenRequest {
    /// A `get-token-with` request for `scope` as the system-assigned identity, every option at
    /// its default (no forced refresh, claims or capabilities, the default deadline, no probe).
    pub fn system_assigned(scope: &str) -> Self {
        TokenRequest {
            scope: scope.to_string(),
            identity: IdentitySelector::SystemAssigned,
            force_refresh: false,
            claims: None,
            client_capabilities: Vec::new(),
            timeout_ms: None,
            probe: false,
        }
    }
}

impl Source {
    /// The stable machine name (`imds`, `app_service`, …), as in the CLI's JSON.
    pub fn id(self) -> &'static str {
        self.core().id()
    }

    /// The matching core value.
    pub fn core(self) -> ::azmi::proto::Source {
        use ::azmi::proto::Source as S;
        match self {
            Source::Imds => S::Imds,
            Source::AppService => S::AppService,
            Source::AppService2017 => S::AppService2017,
            Source::AzureMl => S::AzureMl,
            Source::CloudShell => S::CloudShell,
            Source::AzureArc => S::AzureArc,
            Source::ServiceFabric => S::ServiceFabric,
            Source::WorkloadIdentity => S::WorkloadIdentity,
            Source::ClientSecret => S::ClientSecret,
            Source::ClientCertificate => S::ClientCertificate,
        }
    }
}

impl Error {
    /// `credential_unavailable`, `authentication_failed` or `invalid_argument`.
    pub fn class(&self) -> &'static str {
        use ::azmi::error_report as report;
        match self {
            Error::CredentialUnavailable(_) => report::CREDENTIAL_UNAVAILABLE,
            Error::AuthenticationFailed(_) => report::AUTHENTICATION_FAILED,
            Error::InvalidArgument(_) => report::INVALID_ARGUMENT,
        }
    }

    /// The message, whatever the class.
    pub fn message(&self) -> &str {
        match self {
            Error::CredentialUnavailable(i) | Error::AuthenticationFailed(i) => &i.message,
            Error::InvalidArgument(m) => m,
        }
    }

    /// The details, when the class has them.
    pub fn info(&self) -> Option<&ErrorInfo> {
        match self {
            Error::CredentialUnavailable(i) | Error::AuthenticationFailed(i) => Some(i),
            Error::InvalidArgument(_) => None,
        }
    }

    /// The fields of the JSON error report (the CLI's error line).
    pub fn report(&self) -> ErrorReport<'_> {
        let info = self.info();
        ErrorReport {
            class: self.class(),
            message: self.message(),
            source: info.and_then(|i| i.source).map(Source::id),
            status: info.and_then(|i| i.status),
            code: info.and_then(|i| i.code.as_deref()),
            correlation_id: info.and_then(|i| i.correlation_id.as_deref()),
        }
    }
}
