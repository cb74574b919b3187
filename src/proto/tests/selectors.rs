// Over 350 lines on purpose: the selector matrix for every source, in one table, and its checks.
//! Identity selectors ([`crate::proto::selector`]): validation, refusals before any request.

use serde_json::json;

use super::harness::{
    ARC_KEY_PATH, ML_DEFAULT_CLIENT, Run, Scenario, Scripted, T0_SECS, TOKEN, TOKEN_FILE,
    WORKLOAD_CLIENT, arc_challenge, form_pairs, json, query_pairs, token_expiring_at,
};
use crate::proto::request::check_selector;
use crate::proto::spec::SOURCES;
use crate::proto::{ErrorClass, ErrorKind, IdentitySelector, Method, SelectorKind, Source};

const CLIENT: &str = "5e29463d-71da-4fe0-8e69-999b57db23b0";
const OBJECT: &str = "0f5ad1b3-4a2a-4d45-9c3e-1f2c3d4e5f60";
const RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/my-id";

/// The id the matrix uses for each kind.
fn id_for(kind: SelectorKind) -> &'static str {
    match kind {
        SelectorKind::SystemAssigned => "",
        SelectorKind::ClientId => CLIENT,
        SelectorKind::ObjectId => OBJECT,
        SelectorKind::ResourceId => RESOURCE_ID,
    }
}

fn selector(kind: SelectorKind, value: &str) -> IdentitySelector {
    match kind {
        SelectorKind::SystemAssigned => IdentitySelector::SystemAssigned,
        SelectorKind::ClientId => IdentitySelector::ClientId(value.into()),
        SelectorKind::ObjectId => IdentitySelector::ObjectId(value.into()),
        SelectorKind::ResourceId => IdentitySelector::ResourceId(value.into()),
    }
}

const USER_ASSIGNED: [SelectorKind; 3] = [
    SelectorKind::ClientId,
    SelectorKind::ObjectId,
    SelectorKind::ResourceId,
];

const ALL_KINDS: [SelectorKind; 4] = [
    SelectorKind::SystemAssigned,
    SelectorKind::ClientId,
    SelectorKind::ObjectId,
    SelectorKind::ResourceId,
];

#[test]
fn empty_id_is_invalid_argument_and_nothing_is_sent() {
    for kind in USER_ASSIGNED {
        for mut s in [Scenario::imds(), Scenario::app_service()] {
            s = s.selector(selector(kind, ""));
            let run = s.run();
            run.assert_nothing_sent();
            let e = run.error();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{kind:?}");
            assert_eq!(e.class(), ErrorClass::InvalidArgument);
            assert_eq!(e.mi_source(), None);
            assert_eq!(
                e.message(),
                format!(
                    "the id for {} is empty; pass the id, or use system-assigned",
                    kind.describe()
                )
            );
        }
    }
}

#[test]
fn whitespace_and_control_characters_are_invalid_argument_and_nothing_is_sent() {
    let bad = [
        " 5e29463d",
        "5e29463d ",
        "5e29 463d",
        "5e29463d\n",
        "5e29\t463d",
        "5e29\u{a0}463d",
        "5e29\u{0}463d",
        "5e29\u{1b}[0m463d",
        "5e29\u{7f}463d",
        "5e29\u{85}463d",
    ];
    for kind in USER_ASSIGNED {
        for value in bad {
            let mut s = Scenario::app_service().selector(selector(kind, value));
            let run = s.run();
            run.assert_nothing_sent();
            let e = run.error();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{kind:?} {value:?}");
            assert_eq!(
                e.message(),
                format!(
                    "the id for {} contains whitespace or control characters; pass the id exactly as Azure shows it",
                    kind.describe()
                )
            );
        }
    }
}

#[test]
fn selector_is_validated_before_the_environment_is_read() {
    // A broken endpoint variable does not hide the caller's mistake.
    let mut s = Scenario::app_service()
        .env("IDENTITY_ENDPOINT", "not a url")
        .selector(IdentitySelector::ClientId(String::new()));
    let run = s.run();
    run.assert_nothing_sent();
    assert_eq!(run.error().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn ids_with_url_metacharacters_are_valid_and_encoded() {
    let id = "id&client_id=other#x?y=%2F";
    let mut s = Scenario::imds()
        .selector(IdentitySelector::ObjectId(id.into()))
        .reply(token_expiring_at(T0_SECS + 3600));
    let run = s.run();
    assert!(
        run.request()
            .path_and_query
            .ends_with("&object_id=id%26client_id%3Dother%23x%3Fy%3D%252F"),
        "{}",
        run.request().path_and_query
    );
}

#[test]
fn imds_and_app_service_accept_every_selector_kind() {
    for source in [Source::Imds, Source::AppService] {
        for kind in ALL_KINDS {
            assert_eq!(
                check_selector(source, &selector(kind, CLIENT)),
                Ok(()),
                "{source} {kind:?}"
            );
        }
    }
}

/// What a source does with one selector kind (the table in [`crate::proto::spec`]).
#[derive(Clone, Copy, Debug)]
enum Wire {
    /// Sent with exactly these selector parameters (name, value): none, or one.
    Sends(&'static [(&'static str, &'static str)]),
    /// Refused before anything is sent, with this reason.
    Refuses(&'static str),
}

use Wire::{Refuses, Sends};

const CLOUD_SHELL_WHY: &str =
    "Cloud Shell only has the signed-in user's system identity; omit the user-assigned id";
const SERVICE_FABRIC_WHY: &str = "the identity is set by the cluster's resource configuration (https://aka.ms/servicefabricmi); omit the user-assigned id";
const CLIENT_ID_ONLY_WHY: &str =
    "this source selects user-assigned identities by client id only; pass the identity's client id";
const WORKLOAD_WHY: &str = "workload identity authenticates as an application by client id; pass the client id (or set AZURE_CLIENT_ID)";

/// One source's row of the selector matrix: system, client id, object id, resource id.
struct MatrixRow {
    source: Source,
    scenario: fn() -> Scenario,
    wire: [Wire; 4],
}

#[rustfmt::skip]
const MATRIX: [MatrixRow; 8] = [
    MatrixRow { source: Source::Imds, scenario: Scenario::imds, wire: [
        Sends(&[]), Sends(&[("client_id", CLIENT)]), Sends(&[("object_id", OBJECT)]), Sends(&[("msi_res_id", RESOURCE_ID)]),
    ]},
    MatrixRow { source: Source::AppService, scenario: Scenario::app_service, wire: [
        Sends(&[]), Sends(&[("client_id", CLIENT)]), Sends(&[("object_id", OBJECT)]), Sends(&[("mi_res_id", RESOURCE_ID)]),
    ]},
    // MSAL Python sends object/resource ids here and the endpoint silently ignores them.
    MatrixRow { source: Source::AppService2017, scenario: Scenario::app_service_2017, wire: [
        Sends(&[]), Sends(&[("clientid", CLIENT)]), Refuses(CLIENT_ID_ONLY_WHY), Refuses(CLIENT_ID_ONLY_WHY),
    ]},
    // System-assigned names the compute's default identity (Azure ML requires it).
    MatrixRow { source: Source::AzureMl, scenario: Scenario::azure_ml, wire: [
        Sends(&[("clientid", ML_DEFAULT_CLIENT)]), Sends(&[("clientid", CLIENT)]), Refuses(CLIENT_ID_ONLY_WHY), Refuses(CLIENT_ID_ONLY_WHY),
    ]},
    MatrixRow { source: Source::CloudShell, scenario: Scenario::cloud_shell, wire: [
        Sends(&[]), Refuses(CLOUD_SHELL_WHY), Refuses(CLOUD_SHELL_WHY), Refuses(CLOUD_SHELL_WHY),
    ]},
    // Arc ignores mi_res_id and would return the system identity, hence msi_res_id.
    MatrixRow { source: Source::AzureArc, scenario: Scenario::arc, wire: [
        Sends(&[]), Sends(&[("client_id", CLIENT)]), Sends(&[("object_id", OBJECT)]), Sends(&[("msi_res_id", RESOURCE_ID)]),
    ]},
    // msal-node warns and sends the selector anyway, and gets the cluster's identity back.
    MatrixRow { source: Source::ServiceFabric, scenario: Scenario::service_fabric, wire: [
        Sends(&[]), Refuses(SERVICE_FABRIC_WHY), Refuses(SERVICE_FABRIC_WHY), Refuses(SERVICE_FABRIC_WHY),
    ]},
    // The Entra form's client_id: AZURE_CLIENT_ID, or the selector's client id.
    MatrixRow { source: Source::WorkloadIdentity, scenario: Scenario::workload_identity, wire: [
        Sends(&[("client_id", WORKLOAD_CLIENT)]), Sends(&[("client_id", CLIENT)]), Refuses(WORKLOAD_WHY), Refuses(WORKLOAD_WHY),
    ]},
];

/// The replies that make `source` issue a token for `selector` (Arc must echo it).
fn happy_replies(source: Source, selector: &IdentitySelector) -> Vec<Scripted> {
    let on = (T0_SECS + 3600).to_string();
    match source {
        Source::AzureArc => {
            let mut body = json!({"access_token": TOKEN, "expires_on": on, "token_type": "Bearer"});
            let field = match selector.kind() {
                SelectorKind::SystemAssigned => None,
                SelectorKind::ClientId => Some("client_id"),
                SelectorKind::ObjectId => Some("object_id"),
                SelectorKind::ResourceId => Some("msi_res_id"),
            };
            if let Some(field) = field {
                body[field] = json!(selector.value());
            }
            vec![arc_challenge(), json(200, body)]
        }
        Source::WorkloadIdentity => vec![json(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": TOKEN}),
        )],
        _ => vec![token_expiring_at(T0_SECS + 3600)],
    }
}

/// The selector parameters a request carries: query parameters other than `api-version` and
/// `resource`, and form fields other than `resource` and the workload-identity fixed fields.
fn selector_params(source: Source, run: &Run) -> Vec<Vec<(String, String)>> {
    run.requests
        .iter()
        .map(|request| {
            let mut params = query_pairs(request);
            params.extend(form_pairs(&request.body));
            let workload = source == Source::WorkloadIdentity;
            params.retain(|(name, _)| match name.as_str() {
                "api-version" | "resource" => false,
                "scope" | "grant_type" | "client_assertion_type" | "client_assertion" => !workload,
                _ => true,
            });
            params
        })
        .collect()
}

#[test]
fn selector_matrix_sends_the_exact_parameter_or_refuses_before_any_request_or_file_read() {
    for row in &MATRIX {
        for (kind, wire) in ALL_KINDS.into_iter().zip(row.wire) {
            let selector = selector(kind, id_for(kind));
            let name = format!("{} with {kind:?}", row.source);
            let mut s = (row.scenario)().selector(selector.clone());
            match wire {
                Sends(params) => {
                    for reply in happy_replies(row.source, &selector) {
                        s.push(reply);
                    }
                    let run = s.run();
                    let token = run.token();
                    assert_eq!(token.source(), row.source, "{name}");
                    assert_eq!(token.secret(), TOKEN, "{name}");
                    let expected: Vec<(String, String)> = params
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    let sent = selector_params(row.source, &run);
                    let requests = if row.source == Source::AzureArc { 2 } else { 1 };
                    assert_eq!(sent.len(), requests, "{name}: {:#?}", run.requests);
                    for params in sent {
                        assert_eq!(params, expected, "{name}");
                    }
                    // The only file reads are the source's own: the Arc key, the federated token.
                    let reads: Vec<&str> = run.file_reads.iter().map(|r| r.path.as_str()).collect();
                    let expected_reads: &[&str] = match row.source {
                        Source::AzureArc => &[ARC_KEY_PATH],
                        Source::WorkloadIdentity => &[TOKEN_FILE],
                        _ => &[],
                    };
                    assert_eq!(reads, expected_reads, "{name}");
                }
                Refuses(why) => {
                    // No reply is scripted: any request, to the source or to IMDS, fails the test.
                    let run = s.run();
                    run.assert_untouched();
                    let e = run.error();
                    assert_eq!(e.kind(), ErrorKind::Unavailable, "{name}");
                    assert_eq!(e.class(), ErrorClass::CredentialUnavailable, "{name}");
                    assert_eq!(e.mi_source(), Some(row.source), "{name}");
                    assert_eq!(e.status(), None, "{name}");
                    assert_eq!(
                        e.message(),
                        format!("{} cannot use {}: {why}", row.source, kind.describe()),
                        "{name}"
                    );
                    assert_eq!(s.identity().cached_tokens(), 0, "{name}");
                }
            }
        }
    }
}

#[test]
fn selector_matrix_covers_every_source_and_agrees_with_the_source_table() {
    let listed: Vec<Source> = MATRIX.iter().map(|r| r.source).collect();
    // The environment credential's rows take no selector (the chain gives it none).
    let table: Vec<Source> = SOURCES
        .iter()
        .map(|s| s.source)
        .filter(|s| !matches!(s, Source::ClientSecret | Source::ClientCertificate))
        .collect();
    assert_eq!(
        listed, table,
        "one matrix row per managed-identity source, in table order"
    );
    for row in &MATRIX {
        let spec = row.source.spec();
        for (kind, wire) in ALL_KINDS.into_iter().zip(row.wire) {
            let name = format!("{} with {kind:?}", row.source);
            let checked = check_selector(row.source, &selector(kind, id_for(kind)));
            match wire {
                Sends(params) => {
                    assert_eq!(checked, Ok(()), "{name}");
                    let param = match (row.source, kind) {
                        // The form always names the client; system-assigned takes AZURE_CLIENT_ID.
                        (Source::WorkloadIdentity, SelectorKind::SystemAssigned) => {
                            spec.selectors.client_id
                        }
                        (_, SelectorKind::SystemAssigned) => {
                            spec.system_param.map(|(name, _)| name)
                        }
                        _ => spec.selectors.param(kind).expect("accepted"),
                    };
                    assert_eq!(param, params.first().map(|(n, _)| *n), "{name}");
                }
                Refuses(why) => {
                    let e = checked.expect_err(&name);
                    assert_eq!(e.kind(), ErrorKind::Unavailable, "{name}");
                    assert!(e.message().ends_with(why), "{name}: {e}");
                    assert_eq!(spec.selectors.param(kind), None, "{name}");
                }
            }
        }
    }
}

#[test]
fn every_source_is_implemented_and_only_cloud_shell_and_entra_post() {
    for spec in &SOURCES {
        let post = matches!(
            spec.source,
            Source::CloudShell
                | Source::WorkloadIdentity
                | Source::ClientSecret
                | Source::ClientCertificate
        );
        assert_eq!(spec.method == Method::Post, post, "{}", spec.source);
        assert_eq!(spec.source.spec(), spec, "spec() finds its own row");
    }
}
