// Over 350 lines on purpose: one matrix of every source × selector through the real component,
// with the exact request each must send.
//! Every source × every selector through the real component: the exact request(s) and the
//! identity of the token, or a typed refusal before anything is sent when a source cannot
//! select that identity (each source names its selector parameters differently, and some
//! support none).

use crate::util::*;
use azmi_host_test::emulator::{Config, Identity, Request};
use azmi_host_test::{IdentitySelector, Source, TokenError};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const FORM: &str = "application/x-www-form-urlencoded";

#[derive(Clone, Copy, Debug)]
enum Sel {
    System,
    Client,
    Object,
    Resource,
}

const SELECTORS: [Sel; 4] = [Sel::System, Sel::Client, Sel::Object, Sel::Resource];

fn ua() -> Identity {
    Config::default().user_assigned[0].clone()
}

fn system() -> Identity {
    Config::default().system.unwrap()
}

fn selector(sel: Sel) -> IdentitySelector {
    let ua = ua();
    match sel {
        Sel::System => IdentitySelector::SystemAssigned,
        Sel::Client => IdentitySelector::ClientId(ua.client_id),
        Sel::Object => IdentitySelector::ObjectId(ua.object_id),
        Sel::Resource => IdentitySelector::ResourceId(ua.resource_id),
    }
}

/// The selector's query parameter for the IMDS-like wire names of a source.
fn param(sel: Sel, names: [&'static str; 3]) -> Option<(&'static str, String)> {
    let ua = ua();
    match sel {
        Sel::System => None,
        Sel::Client => Some((names[0], ua.client_id)),
        Sel::Object => Some((names[1], ua.object_id)),
        Sel::Resource => Some((names[2], ua.resource_id)),
    }
}

/// Everything one source needs in a test: its variables, preopens and scratch files.
struct Setup {
    source: Source,
    env: Vec<(String, String)>,
    config: Config,
    preopens: Vec<(std::path::PathBuf, String)>,
    _scratch: Option<Scratch>,
}

fn setup(source: Source) -> Setup {
    let config = Config::default();
    let s = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut setup = Setup {
        source,
        env: Vec::new(),
        config: config.clone(),
        preopens: Vec::new(),
        _scratch: None,
    };
    match source {
        Source::Imds => setup.env.push(s("AZURE_POD_IDENTITY_AUTHORITY_HOST", EMU)),
        Source::AppService => {
            setup
                .env
                .push(s("IDENTITY_ENDPOINT", &format!("{EMU}/msi/token")));
            setup
                .env
                .push(s("IDENTITY_HEADER", &config.identity_header));
        }
        Source::AppService2017 | Source::AzureMl => {
            setup
                .env
                .push(s("MSI_ENDPOINT", &format!("{EMU}/msi/token")));
            setup.env.push(s("MSI_SECRET", &config.msi_secret));
            if source == Source::AzureMl {
                setup
                    .env
                    .push(s("DEFAULT_IDENTITY_CLIENT_ID", &system().client_id));
            }
        }
        Source::CloudShell => setup
            .env
            .push(s("MSI_ENDPOINT", &format!("{EMU}/oauth2/token"))),
        Source::AzureArc => {
            let scratch = Scratch::new("arc");
            setup.env.push(s(
                "IDENTITY_ENDPOINT",
                &format!("{EMU}/metadata/identity/oauth2/token"),
            ));
            setup.env.push(s("IMDS_ENDPOINT", EMU));
            setup.config.arc_key_dir = scratch.0.clone();
            setup
                .preopens
                .push((scratch.0.clone(), "/var/opt/azcmagent/tokens".into()));
            setup._scratch = Some(scratch);
        }
        Source::ServiceFabric => {
            let https = EMU.replace("http://", "https://");
            setup.env.push(s(
                "IDENTITY_ENDPOINT",
                &format!("{https}/metadata/identity/oauth2/token"),
            ));
            setup
                .env
                .push(s("IDENTITY_HEADER", &config.identity_header));
            setup.env.push(s(
                "IDENTITY_SERVER_THUMBPRINT",
                "D1:43:B4:F9:B5:57:27:DB:74:18:90:10:9A:16:88:2C:C6:57:63:D5",
            ));
        }
        Source::ClientSecret | Source::ClientCertificate => {
            unreachable!("the environment credential is default-credential's: default_chain.rs")
        }
        Source::WorkloadIdentity => {
            let scratch = Scratch::new("wi");
            let file = scratch.0.join("azure-identity-token");
            std::fs::write(&file, format!("{}\n", config.federated_token)).unwrap();
            setup.env.push(s(
                "AZURE_AUTHORITY_HOST",
                &EMU.replace("http://", "https://"),
            ));
            setup.env.push(s("AZURE_TENANT_ID", TENANT));
            setup.env.push(s("AZURE_CLIENT_ID", &system().client_id));
            setup
                .env
                .push(s("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap()));
            setup
                .preopens
                .push((scratch.0.clone(), scratch.0.display().to_string()));
            setup._scratch = Some(scratch);
        }
    }
    setup
}

/// What the source must send for `sel`, or `None` when it must refuse before sending.
fn expected(setup: &Setup, sel: Sel, request: &Request) -> Option<()> {
    let config = &setup.config;
    let vault = ("resource", VAULT.to_string());
    let check =
        |method: &str, path: &str, query: Vec<(&str, String)>, headers: Vec<(&str, String)>| {
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_request(request, method, path, &query, &headers);
        };
    let with = |mut q: Vec<(&'static str, String)>, p: Option<(&'static str, String)>| {
        q.extend(p);
        q
    };
    match setup.source {
        Source::ClientSecret | Source::ClientCertificate => {
            unreachable!("the environment credential is default-credential's: default_chain.rs")
        }
        Source::Imds => check(
            "GET",
            "/metadata/identity/oauth2/token",
            with(
                vec![("api-version", "2018-02-01".into()), vault],
                param(sel, ["client_id", "object_id", "msi_res_id"]),
            ),
            vec![("metadata", "true".into())],
        ),
        Source::AppService => check(
            "GET",
            "/msi/token",
            with(
                vec![("api-version", "2019-08-01".into()), vault],
                param(sel, ["client_id", "object_id", "mi_res_id"]),
            ),
            vec![("x-identity-header", config.identity_header.clone())],
        ),
        Source::AppService2017 | Source::AzureMl => {
            let id = match sel {
                Sel::Object | Sel::Resource => return None,
                Sel::Client => Some(("clientid", ua().client_id)),
                Sel::System if setup.source == Source::AzureMl => {
                    Some(("clientid", system().client_id))
                }
                Sel::System => None,
            };
            let mut headers = vec![("secret", config.msi_secret.clone())];
            if setup.source == Source::AzureMl {
                headers.push(("metadata", "true".into()));
            }
            check(
                "GET",
                "/msi/token",
                with(vec![("api-version", "2017-09-01".into()), vault], id),
                headers,
            );
        }
        Source::CloudShell => {
            if !matches!(sel, Sel::System) {
                return None;
            }
            check(
                "POST",
                "/oauth2/token",
                vec![],
                vec![
                    ("metadata", "true".into()),
                    ("content-type", FORM.into()),
                    ("content-length", request.body.len().to_string()),
                ],
            );
            assert_eq!(
                String::from_utf8_lossy(&request.body),
                "resource=https%3A%2F%2Fvault.azure.net"
            );
        }
        Source::AzureArc => {
            let query = with(
                vec![("api-version", "2020-06-01".into()), vault],
                param(sel, ["client_id", "object_id", "msi_res_id"]),
            );
            match request.header("authorization") {
                None => check(
                    "GET",
                    "/metadata/identity/oauth2/token",
                    query,
                    vec![("metadata", "true".into())],
                ),
                Some(auth) => {
                    let key = auth.strip_prefix("Basic ").expect("Basic key");
                    assert_eq!(key.len(), 32, "the key file's contents, verbatim");
                    check(
                        "GET",
                        "/metadata/identity/oauth2/token",
                        query,
                        vec![
                            ("metadata", "true".into()),
                            ("authorization", auth.to_string()),
                        ],
                    );
                }
            }
        }
        Source::ServiceFabric => {
            if !matches!(sel, Sel::System) {
                return None;
            }
            check(
                "GET",
                "/metadata/identity/oauth2/token",
                vec![("api-version", "2019-07-01-preview".into()), vault],
                vec![("secret", config.identity_header.clone())],
            );
        }
        Source::WorkloadIdentity => {
            let client = match sel {
                Sel::Object | Sel::Resource => return None,
                Sel::Client => ua().client_id,
                Sel::System => system().client_id,
            };
            check(
                "POST",
                &format!("/{TENANT}/oauth2/v2.0/token"),
                vec![],
                vec![
                    ("content-type", FORM.into()),
                    ("content-length", request.body.len().to_string()),
                ],
            );
            let form: Vec<(String, String)> = form_fields(&request.body);
            let want = [
                ("client_id", client.as_str()),
                ("scope", VAULT_SCOPE),
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", config.federated_token.as_str()),
            ];
            let got: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(got, want);
        }
    }
    Some(())
}

fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body).into_owned();
    let decoded = Request::from_parts("GET", &format!("/?{text}"), vec![], vec![]);
    decoded.query
}

/// Which identity a successful token must be for.
fn expected_client(source: Source, sel: Sel) -> String {
    match (source, sel) {
        (_, Sel::System) => system().client_id,
        _ => ua().client_id,
    }
}

async fn run(source: Source, sel: Sel) {
    let setup = setup(source);
    let env: Vec<(&str, &str)> = setup
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut rig = rig_full(setup.config.clone(), &env, setup.preopens.clone()).await;
    let result = rig
        .guest
        .get_token(VAULT_SCOPE, &selector(sel))
        .await
        .unwrap();
    let requests = rig.emulator.requests();
    let refused =
        requests.is_empty() && matches!(result, Err(TokenError::CredentialUnavailable(_)));
    if refused {
        let Err(TokenError::CredentialUnavailable(info)) = &result else {
            unreachable!()
        };
        assert_eq!(info.source, Some(source), "{source:?} {sel:?}: {info:?}");
        // The refusal must be the table's, not an accident: the table agrees nothing is sent.
        let probe = Request::from_parts("GET", "/", vec![], vec![]);
        assert!(
            expected(&setup, sel, &probe).is_none(),
            "{source:?} {sel:?} refused: {}",
            info.message
        );
        return;
    }
    let token = result.unwrap_or_else(|e| panic!("{source:?} {sel:?}: {e:?}"));
    assert_eq!(token.source, source);
    let issued = rig
        .emulator
        .issued(&token.token)
        .expect("minted by the emulator");
    assert_eq!(
        issued.client_id,
        expected_client(source, sel),
        "{source:?} {sel:?}"
    );
    let want_requests = if source == Source::AzureArc { 2 } else { 1 };
    assert_eq!(
        requests.len(),
        want_requests,
        "{source:?} {sel:?}: {requests:?}"
    );
    for request in &requests {
        expected(&setup, sel, request)
            .unwrap_or_else(|| panic!("{source:?} {sel:?} should have been refused"));
    }
}

macro_rules! matrix {
    ($($name:ident: $source:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            for sel in SELECTORS {
                run($source, sel).await;
            }
        }
    )*};
}

matrix! {
    matrix_imds: Source::Imds;
    matrix_app_service: Source::AppService;
    matrix_app_service_2017: Source::AppService2017;
    matrix_azure_ml: Source::AzureMl;
    matrix_cloud_shell: Source::CloudShell;
    matrix_azure_arc: Source::AzureArc;
    matrix_service_fabric: Source::ServiceFabric;
    matrix_workload_identity: Source::WorkloadIdentity;
}
