//! Identity selectors (§5, §14 rule 8): validation, and refusals before anything is sent.

use super::harness::{Scenario, T0_SECS, token_expiring_at};
use crate::proto::request::check_selector;
use crate::proto::{ErrorClass, ErrorKind, IdentitySelector, SOURCES, SelectorKind, Source};

const CLIENT: &str = "5e29463d-71da-4fe0-8e69-999b57db23b0";

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

/// What a source that azmi does not implement yet must say for each selector kind.
struct NotYet {
    source: Source,
    env: &'static [(&'static str, &'static str)],
    arc_agent: bool,
    supported: &'static [SelectorKind],
    why: &'static str,
}

const NOT_YET: [NotYet; 7] = [
    NotYet {
        source: Source::CloudShell,
        env: &[("MSI_ENDPOINT", "http://127.0.0.1:50342/oauth2/token")],
        arc_agent: false,
        supported: &[SelectorKind::SystemAssigned],
        why: "Cloud Shell only has the signed-in user's system identity; omit the user-assigned id",
    },
    NotYet {
        source: Source::ServiceFabric,
        env: &[
            (
                "IDENTITY_ENDPOINT",
                "https://10.0.0.4:2377/metadata/identity/oauth2/token",
            ),
            ("IDENTITY_HEADER", "secret"),
            (
                "IDENTITY_SERVER_THUMBPRINT",
                "0123456789ABCDEF0123456789ABCDEF01234567",
            ),
        ],
        arc_agent: false,
        supported: &[SelectorKind::SystemAssigned],
        why: "the identity is set by the cluster's resource configuration (https://aka.ms/servicefabricmi); omit the user-assigned id",
    },
    NotYet {
        source: Source::AzureMl,
        env: &[
            ("MSI_ENDPOINT", "http://127.0.0.1:8911/msi/token"),
            ("MSI_SECRET", "secret"),
            ("DEFAULT_IDENTITY_CLIENT_ID", CLIENT),
        ],
        arc_agent: false,
        supported: &[SelectorKind::SystemAssigned, SelectorKind::ClientId],
        why: "this source selects user-assigned identities by client id only; pass the identity's client id",
    },
    NotYet {
        source: Source::AppService2017,
        env: &[
            ("MSI_ENDPOINT", "http://127.0.0.1:8911/msi/token"),
            ("MSI_SECRET", "secret"),
        ],
        arc_agent: false,
        supported: &[SelectorKind::SystemAssigned, SelectorKind::ClientId],
        why: "this source selects user-assigned identities by client id only; pass the identity's client id",
    },
    NotYet {
        source: Source::AzureArc,
        env: &[
            (
                "IDENTITY_ENDPOINT",
                "http://localhost:40342/metadata/identity/oauth2/token",
            ),
            ("IMDS_ENDPOINT", "http://localhost:40342"),
        ],
        arc_agent: false,
        supported: &ALL_KINDS,
        why: "",
    },
    NotYet {
        source: Source::AzureArc,
        env: &[],
        arc_agent: true,
        supported: &ALL_KINDS,
        why: "",
    },
    NotYet {
        source: Source::WorkloadIdentity,
        env: &[
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "/var/run/secrets/azure/tokens/azure-identity-token",
            ),
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", CLIENT),
        ],
        arc_agent: false,
        supported: &[SelectorKind::SystemAssigned, SelectorKind::ClientId],
        why: "this source cannot select that identity; pass a client id",
    },
];

#[test]
fn sources_not_implemented_yet_refuse_by_name_and_never_fall_back_to_imds() {
    for case in &NOT_YET {
        let spec = case.source.spec();
        assert!(
            !spec.implemented,
            "{} is implemented now: move it out of this table",
            case.source
        );
        for kind in ALL_KINDS {
            let mut s = Scenario::new()
                .envs(case.env)
                .selector(selector(kind, CLIENT));
            if case.arc_agent {
                s = s.arc_agent();
            }
            // No reply is scripted: any request, to IMDS or elsewhere, fails the test.
            let run = s.run();
            run.assert_nothing_sent();
            let e = run.error();
            let name = format!("{} with {kind:?}", case.source);
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{name}");
            assert_eq!(e.class(), ErrorClass::CredentialUnavailable, "{name}");
            assert_eq!(e.mi_source(), Some(case.source), "{name}");
            assert_eq!(e.status(), None, "{name}");
            let supported = case.supported.contains(&kind);
            let expected = if supported {
                format!(
                    "{} detected ({} set) but this azmi version does not support it yet; use a host with IMDS or App Service, or unset those variables",
                    case.source, spec.variables
                )
            } else {
                format!(
                    "{} cannot use {}: {}",
                    case.source,
                    kind.describe(),
                    case.why
                )
            };
            assert_eq!(e.message(), expected, "{name}");
            assert_eq!(s.identity().cached_tokens(), 0);

            let checked = check_selector(case.source, &selector(kind, CLIENT));
            if supported {
                assert_eq!(checked, Ok(()), "{name}");
            } else {
                assert_eq!(
                    checked.as_ref().map_err(|e| e.message()),
                    Err(expected.as_str()),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn every_source_is_either_implemented_or_in_the_not_yet_table() {
    for spec in &SOURCES {
        let listed = NOT_YET.iter().any(|c| c.source == spec.source);
        assert_eq!(
            listed, !spec.implemented,
            "{}: implemented={}",
            spec.source, spec.implemented
        );
    }
    let implemented: Vec<Source> = SOURCES
        .iter()
        .filter(|s| s.implemented)
        .map(|s| s.source)
        .collect();
    assert_eq!(implemented, [Source::Imds, Source::AppService]);
}
