//! A Spin HTTP component that reads a Key Vault secret with a token from the default chain:
//! a service principal's client secret on a laptop or in CI, the managed identity in Azure.
//!
//! `GET /secrets/<name>` asks azmi (imported as `azmi:identity/default-credential`, composed in
//! by Spin's component dependencies or by `wac plug`) for a token for
//! `https://vault.azure.net/.default`, calls `GET {VAULT_URL}/secrets/<name>` with
//! `Authorization: Bearer …` and answers with the secret's value as text. `GET /token` gets
//! the same token and answers with where it came from and when it expires (JSON
//! `{"source": …, "expires_on": …}`, never the token): a request whose only work is the token.
//! Failures are JSON `{"error": …, "message": …}`; the token never appears in a response or a
//! log.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // clippy.toml bans these for the sans-IO core only

mod reply;
mod vault;

#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        inline: r"
            package azmi-examples:spin-app;

            world spin-app {
                import azmi:identity/default-credential@0.2.0;
                export wasi:http/incoming-handler@0.2.12;
            }
        ",
        // The azmi contract and its vendored wasi packages.
        path: "../../wit",
        with: {
            "wasi:http/types@0.2.12": wasi::http::types,
            "wasi:io/error@0.2.12": wasi::io::error,
            "wasi:io/poll@0.2.12": wasi::io::poll,
            "wasi:io/streams@0.2.12": wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasi::clocks::monotonic_clock,
            "azmi:identity/types@0.2.0": generate,
            "azmi:identity/default-credential@0.2.0": generate,
        },
    });

    use super::App;
    export!(App);
}

use bindings::azmi::identity::default_credential::get_token;
use bindings::azmi::identity::types::{Error as TokenError, Source};
use bindings::exports::wasi::http::incoming_handler::Guest;
use reply::Reply;
use serde_json::json;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

/// The resource whose token Key Vault accepts.
const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

struct App;

impl Guest for App {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        respond(&request).send(response_out);
    }
}

fn respond(request: &IncomingRequest) -> Reply {
    let target = request.path_with_query().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let name = path.strip_prefix("/secrets/");
    if name.is_none() && path != "/token" {
        return Reply::error(404, "not_found", "try GET /secrets/<name> or GET /token");
    }
    if !matches!(request.method(), Method::Get) {
        return Reply::error(405, "method_not_allowed", "only GET is served");
    }
    let Some(name) = name else {
        return token_info();
    };
    if !vault::is_secret_name(name) {
        return Reply::error(
            400,
            "bad_name",
            "a secret name is 1-127 letters, digits and '-'",
        );
    }
    let vault = match vault::Vault::from_env() {
        Ok(vault) => vault,
        Err(message) => return Reply::error(500, "configuration", &message),
    };
    // The chain: AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET (a service principal),
    // else workload identity, else managed identity (AZURE_CLIENT_ID naming a user-assigned
    // one). Spin makes a new instance per request; the shared-cache build keeps the token in
    // the key-value store, so one token request serves every HTTP request.
    let token = match get_token(VAULT_SCOPE) {
        Ok(token) => token,
        Err(error) => return token_error(&error),
    };
    match vault.secret(name, &token.token) {
        Ok(value) => Reply::text(200, value),
        Err(message) => Reply::error(502, "vault", &message),
    }
}

/// `GET /token`: the token's source and expiry, never the token itself.
fn token_info() -> Reply {
    match get_token(VAULT_SCOPE) {
        Ok(token) => Reply::json(
            200,
            &json!({
                "source": source_name(token.source),
                "expires_on": token.expires_on,
            }),
        ),
        Err(error) => token_error(&error),
    }
}

/// 503 when no credential of the chain is usable here (the message says why for each), 502
/// when the credential that answered refused (the Entra or identity endpoint's error), 500 for
/// a bad argument (a bug in this app).
fn token_error(error: &TokenError) -> Reply {
    let (status, class, info) = match error {
        TokenError::CredentialUnavailable(info) => (503, "credential_unavailable", info),
        TokenError::AuthenticationFailed(info) => (502, "authentication_failed", info),
        TokenError::InvalidArgument(message) => {
            return Reply::error(500, "invalid_argument", message);
        }
    };
    Reply::json(
        status,
        &json!({
            "error": class,
            "message": info.message,
            "source": info.source.map(source_name),
            "status": info.status,
            "code": info.code,
            "correlation_id": info.correlation_id,
        }),
    )
}

/// The source's name as azmi's CLI prints it.
fn source_name(source: Source) -> &'static str {
    match source {
        Source::Imds => "imds",
        Source::AppService => "app_service",
        Source::AppService2017 => "app_service_2017",
        Source::AzureMl => "azure_ml",
        Source::CloudShell => "cloud_shell",
        Source::AzureArc => "azure_arc",
        Source::ServiceFabric => "service_fabric",
        Source::WorkloadIdentity => "workload_identity",
        Source::ClientSecret => "client_secret",
        Source::ClientCertificate => "client_certificate",
    }
}
