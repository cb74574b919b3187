// Over 350 lines on purpose: one scenario per row and corner of the detection table.
//! Source detection ([`crate::proto::source`]): precedence, empty values, endpoint validation.

use super::harness::{Scenario, T0_SECS, token_expiring_at};
use crate::proto::detect::{Detection, detect};
use crate::proto::{
    EnvSnapshot, ErrorClass, ErrorKind, HostFacts, IdentitySelector, SelectorKind, Source,
};

const IDENTITY_ENDPOINT: &str = "http://127.0.0.1:41564/msi/token";
const SF_ENDPOINT: &str = "https://10.0.0.4:2377/metadata/identity/oauth2/token";
const ARC_ENDPOINT: &str = "http://localhost:40342/metadata/identity/oauth2/token";
const MSI_ENDPOINT: &str = "http://127.0.0.1:50342/oauth2/token";
const THUMBPRINT: &str = "0123456789ABCDEF0123456789ABCDEF01234567";
const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "5e29463d-71da-4fe0-8e69-999b57db23b0";
const IMDS_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
const ARC_DEFAULT: &str = "http://127.0.0.1:40342/metadata/identity/oauth2/token";
const ENTRA: &str = "https://login.microsoftonline.com/";

const SF: &[(&str, &str)] = &[
    ("IDENTITY_ENDPOINT", SF_ENDPOINT),
    ("IDENTITY_HEADER", "secret"),
    ("IDENTITY_SERVER_THUMBPRINT", THUMBPRINT),
];
const APP: &[(&str, &str)] = &[
    ("IDENTITY_ENDPOINT", IDENTITY_ENDPOINT),
    ("IDENTITY_HEADER", "secret"),
];
const ML: &[(&str, &str)] = &[
    ("MSI_ENDPOINT", MSI_ENDPOINT),
    ("MSI_SECRET", "secret"),
    ("DEFAULT_IDENTITY_CLIENT_ID", CLIENT),
];
const APP_2017: &[(&str, &str)] = &[("MSI_ENDPOINT", MSI_ENDPOINT), ("MSI_SECRET", "secret")];
const CLOUD_SHELL: &[(&str, &str)] = &[("MSI_ENDPOINT", MSI_ENDPOINT)];
const ARC: &[(&str, &str)] = &[
    ("IDENTITY_ENDPOINT", ARC_ENDPOINT),
    ("IMDS_ENDPOINT", "http://localhost:40342"),
];
const WORKLOAD: &[(&str, &str)] = &[
    ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE),
    ("AZURE_TENANT_ID", TENANT),
    ("AZURE_CLIENT_ID", CLIENT),
];
const POD: &[(&str, &str)] = &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:2579")];

/// A group of environment variables.
type Vars = &'static [(&'static str, &'static str)];

/// One row of the precedence table.
struct Row {
    name: &'static str,
    env: &'static [Vars],
    arc_agent: bool,
    selector: SelectorKind,
    source: Source,
    url: &'static str,
    variable: &'static str,
}

const fn row(
    name: &'static str,
    env: &'static [Vars],
    arc_agent: bool,
    source: Source,
    url: &'static str,
    variable: &'static str,
) -> Row {
    Row {
        name,
        env,
        arc_agent,
        selector: SelectorKind::SystemAssigned,
        source,
        url,
        variable,
    }
}

fn snapshot(groups: &[&[(&str, &str)]]) -> EnvSnapshot {
    EnvSnapshot::from_pairs(groups.iter().flat_map(|g| g.iter().copied()))
}

fn url(d: &Detection) -> String {
    format!(
        "{}://{}{}",
        d.endpoint.scheme.as_str(),
        d.endpoint.authority,
        d.endpoint.path_and_query(&[])
    )
}

fn detected(env: &EnvSnapshot, arc_agent: bool, selector: SelectorKind) -> Detection {
    detect(
        env,
        HostFacts {
            arc_agent_present: arc_agent,
            no_file_access: false,
        },
        selector,
    )
    .unwrap_or_else(|e| panic!("detection failed: {e}"))
}

#[test]
fn precedence_follows_msal_order_with_workload_identity_before_imds() {
    use Source::*;
    const ID_ONLY: &[(&str, &str)] = &[("IDENTITY_ENDPOINT", IDENTITY_ENDPOINT)];
    const HEADER_ONLY: &[(&str, &str)] = &[("IDENTITY_HEADER", "secret")];
    const IMDS_MARKER: &[(&str, &str)] = &[("IMDS_ENDPOINT", "http://localhost:40342")];
    const THUMB_ONLY: &[(&str, &str)] = &[("IDENTITY_SERVER_THUMBPRINT", THUMBPRINT)];
    const DEFAULT_ID: &[(&str, &str)] = &[("DEFAULT_IDENTITY_CLIENT_ID", CLIENT)];
    const AUTHORITY: &[(&str, &str)] =
        &[("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us")];
    const NO_CLIENT: &[(&str, &str)] = &[
        ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE),
        ("AZURE_TENANT_ID", TENANT),
    ];
    const NO_TENANT: &[(&str, &str)] = &[
        ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE),
        ("AZURE_CLIENT_ID", CLIENT),
    ];
    const NO_FILE: &[(&str, &str)] = &[("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_ID", CLIENT)];
    #[rustfmt::skip]
    let rows = [
        row("nothing set", &[], false, Imds, IMDS_URL, "the IMDS default"),
        row("service fabric", &[SF], false, ServiceFabric, SF_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("service fabric beats arc agent", &[SF], true, ServiceFabric, SF_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("app service", &[APP], false, AppService, IDENTITY_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("app service beats msi pair", &[APP, APP_2017], false, AppService, IDENTITY_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("app service beats imds marker", &[APP, IMDS_MARKER], false, AppService, IDENTITY_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("app service beats arc agent", &[APP], true, AppService, IDENTITY_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("app service beats workload identity", &[WORKLOAD, APP], false, AppService, IDENTITY_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("azure ml", &[ML], false, AzureMl, MSI_ENDPOINT, "MSI_ENDPOINT"),
        row("app service 2017", &[APP_2017], false, AppService2017, MSI_ENDPOINT, "MSI_ENDPOINT"),
        row("cloud shell", &[CLOUD_SHELL], false, CloudShell, MSI_ENDPOINT, "MSI_ENDPOINT"),
        row("cloud shell ignores default client id", &[CLOUD_SHELL, DEFAULT_ID], false, CloudShell, MSI_ENDPOINT, "MSI_ENDPOINT"),
        row("cloud shell beats arc pair", &[ARC, CLOUD_SHELL], false, CloudShell, MSI_ENDPOINT, "MSI_ENDPOINT"),
        row("azure ml beats arc pair", &[ARC, ML], false, AzureMl, MSI_ENDPOINT, "MSI_ENDPOINT"),
        row("cloud shell beats arc agent", &[CLOUD_SHELL], true, CloudShell, MSI_ENDPOINT, "MSI_ENDPOINT"),
        row("cloud shell beats workload identity", &[WORKLOAD, CLOUD_SHELL], false, CloudShell, MSI_ENDPOINT, "MSI_ENDPOINT"),
        row("arc by variables", &[ARC], false, AzureArc, ARC_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("arc by variables and agent uses the variable", &[ARC], true, AzureArc, ARC_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("arc by agent only", &[], true, AzureArc, ARC_DEFAULT, "the Arc agent default"),
        row("arc agent with identity endpoint only uses the default", &[ID_ONLY], true, AzureArc, ARC_DEFAULT, "the Arc agent default"),
        row("arc beats workload identity", &[WORKLOAD, ARC], false, AzureArc, ARC_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("arc agent beats workload identity", &[WORKLOAD], true, AzureArc, ARC_DEFAULT, "the Arc agent default"),
        row("arc beats pod identity", &[POD, ARC], false, AzureArc, ARC_ENDPOINT, "IDENTITY_ENDPOINT"),
        row("workload identity", &[WORKLOAD], false, WorkloadIdentity, ENTRA, "the default authority"),
        row("workload identity honours authority host", &[WORKLOAD, AUTHORITY], false, WorkloadIdentity, "https://login.microsoftonline.us/", "AZURE_AUTHORITY_HOST"),
        row("workload identity beats pod identity", &[POD, WORKLOAD], false, WorkloadIdentity, ENTRA, "the default authority"),
        row("workload identity without client id is imds", &[NO_CLIENT], false, Imds, IMDS_URL, "the IMDS default"),
        row("workload identity without tenant is imds", &[NO_TENANT], false, Imds, IMDS_URL, "the IMDS default"),
        row("workload identity without token file is imds", &[NO_FILE], false, Imds, IMDS_URL, "the IMDS default"),
        row("pod identity", &[POD], false, Imds, "http://127.0.0.1:2579/metadata/identity/oauth2/token", "AZURE_POD_IDENTITY_AUTHORITY_HOST"),
        row("identity endpoint alone", &[ID_ONLY], false, Imds, IMDS_URL, "the IMDS default"),
        row("identity header alone", &[HEADER_ONLY], false, Imds, IMDS_URL, "the IMDS default"),
        row("imds marker alone", &[IMDS_MARKER], false, Imds, IMDS_URL, "the IMDS default"),
        row("thumbprint without header", &[ID_ONLY, THUMB_ONLY], false, Imds, IMDS_URL, "the IMDS default"),
        row("default client id alone", &[DEFAULT_ID], false, Imds, IMDS_URL, "the IMDS default"),
    ];
    for r in &rows {
        let d = detected(&snapshot(r.env), r.arc_agent, r.selector);
        assert_eq!(d.source, r.source, "{}", r.name);
        assert_eq!(url(&d), r.url, "{}", r.name);
        assert_eq!(d.endpoint_variable, r.variable, "{}", r.name);
    }
}

#[test]
fn empty_values_are_unset_so_empty_thumbprint_is_app_service_not_msal_node_service_fabric() {
    // msal-node decides the source with a truthiness test but names it with `!== undefined`, so
    // IDENTITY_SERVER_THUMBPRINT="" is reported as Service Fabric while requests go to App
    // Service. Here empty is unset, everywhere.
    let empty_thumbprint = snapshot(&[APP, &[("IDENTITY_SERVER_THUMBPRINT", "")]]);
    assert_eq!(
        detected(&empty_thumbprint, false, SelectorKind::SystemAssigned).source,
        Source::AppService
    );

    #[rustfmt::skip]
    let cases: &[(&str, &[Vars], Source)] = &[
        ("empty IDENTITY_HEADER", &[APP, &[("IDENTITY_HEADER", "")]], Source::Imds),
        ("empty IDENTITY_ENDPOINT", &[APP, &[("IDENTITY_ENDPOINT", "")]], Source::Imds),
        ("empty MSI_SECRET", &[APP_2017, &[("MSI_SECRET", "")]], Source::CloudShell),
        ("empty MSI_ENDPOINT", &[APP_2017, &[("MSI_ENDPOINT", "")]], Source::Imds),
        ("empty DEFAULT_IDENTITY_CLIENT_ID", &[ML, &[("DEFAULT_IDENTITY_CLIENT_ID", "")]], Source::AppService2017),
        ("empty IMDS_ENDPOINT", &[ARC, &[("IMDS_ENDPOINT", "")]], Source::Imds),
        ("empty AZURE_CLIENT_ID", &[WORKLOAD, &[("AZURE_CLIENT_ID", "")]], Source::Imds),
        ("empty AZURE_TENANT_ID", &[WORKLOAD, &[("AZURE_TENANT_ID", "")]], Source::Imds),
        ("empty AZURE_FEDERATED_TOKEN_FILE", &[WORKLOAD, &[("AZURE_FEDERATED_TOKEN_FILE", "")]], Source::Imds),
    ];
    for (name, env, source) in cases {
        assert_eq!(
            detected(&snapshot(env), false, SelectorKind::SystemAssigned).source,
            *source,
            "{name}"
        );
    }

    // An empty pod-identity host or authority host is the default, not a malformed URL.
    let d = detected(
        &snapshot(&[&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "")]]),
        false,
        SelectorKind::SystemAssigned,
    );
    assert_eq!(url(&d), IMDS_URL);
    let d = detected(
        &snapshot(&[WORKLOAD, &[("AZURE_AUTHORITY_HOST", "")]]),
        false,
        SelectorKind::SystemAssigned,
    );
    assert_eq!(url(&d), ENTRA);

    // End to end: the empty thumbprint sends an App Service request and labels it App Service.
    let mut s = Scenario::app_service()
        .env("IDENTITY_SERVER_THUMBPRINT", "")
        .reply(token_expiring_at(T0_SECS + 3600));
    let run = s.run();
    assert_eq!(run.token().source(), Source::AppService);
    assert_eq!(run.request().authority, "127.0.0.1:41564");
    assert!(run.request().header("X-IDENTITY-HEADER").is_some());
}

#[test]
fn later_value_of_a_repeated_variable_wins_even_when_empty() {
    let env = EnvSnapshot::from_pairs([
        ("IDENTITY_ENDPOINT", IDENTITY_ENDPOINT),
        ("IDENTITY_HEADER", "secret"),
        ("IDENTITY_HEADER", ""),
    ]);
    assert_eq!(env.get("IDENTITY_HEADER"), None);
    assert_eq!(
        detected(&env, false, SelectorKind::SystemAssigned).source,
        Source::Imds
    );
}

#[test]
fn identity_endpoint_alone_is_imds_like_msal_not_python() {
    let mut s = Scenario::new()
        .env("IDENTITY_ENDPOINT", IDENTITY_ENDPOINT)
        .reply(token_expiring_at(T0_SECS + 3600));
    let run = s.run();
    assert_eq!(run.token().source(), Source::Imds);
    assert_eq!(run.request().authority, "169.254.169.254");
    assert_eq!(run.request().header("Metadata"), Some("true"));
}

#[test]
fn user_assigned_selector_with_workload_variables_selects_workload_identity_not_the_node_imds() {
    // Without AZURE_CLIENT_ID, a client-id selector supplies the client id; an object or
    // resource id also selects workload identity, so that it is refused there instead of being
    // sent to IMDS, which on AKS answers with the *node's* identities.
    let partial = snapshot(&[&[
        ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE),
        ("AZURE_TENANT_ID", TENANT),
    ]]);
    for kind in [
        SelectorKind::ClientId,
        SelectorKind::ObjectId,
        SelectorKind::ResourceId,
    ] {
        let d = detected(&partial, false, kind);
        assert_eq!(d.source, Source::WorkloadIdentity, "{kind:?}");
        assert_eq!(url(&d), ENTRA, "{kind:?}");
        assert_eq!(d.endpoint_variable, "the default authority", "{kind:?}");
    }
    assert_eq!(
        detected(&partial, false, SelectorKind::SystemAssigned).source,
        Source::Imds,
        "no client id anywhere: nothing to authenticate as, so IMDS"
    );

    for selector in [
        IdentitySelector::ObjectId(CLIENT.into()),
        IdentitySelector::ResourceId("/subscriptions/x/id".into()),
    ] {
        // No reply or file is scripted: a request to IMDS (or anything) fails the test.
        let mut s = Scenario::new()
            .env("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE)
            .env("AZURE_TENANT_ID", TENANT)
            .selector(selector.clone());
        let run = s.run();
        run.assert_untouched();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{selector:?}");
        assert_eq!(
            e.mi_source(),
            Some(Source::WorkloadIdentity),
            "{selector:?}"
        );
        assert_eq!(
            e.message(),
            format!(
                "workload identity cannot use {}: workload identity authenticates as an application by client id; pass the client id (or set AZURE_CLIENT_ID)",
                selector.kind().describe()
            )
        );
    }
}

#[test]
fn pod_identity_base_with_or_without_trailing_slash_and_with_path_prefix() {
    #[rustfmt::skip]
    let cases = [
        ("http://127.0.0.1:2579", "127.0.0.1:2579", "/metadata/identity/oauth2/token"),
        // msal-node would produce `//metadata` here.
        ("http://127.0.0.1:2579/", "127.0.0.1:2579", "/metadata/identity/oauth2/token"),
        ("http://127.0.0.1:2579//", "127.0.0.1:2579", "/metadata/identity/oauth2/token"),
        // JS's probe would drop the prefix; Python keeps it.
        ("http://NMI.Local:2579/prefix", "nmi.local:2579", "/prefix/metadata/identity/oauth2/token"),
        ("http://nmi.local:2579/prefix/", "nmi.local:2579", "/prefix/metadata/identity/oauth2/token"),
    ];
    for (base, authority, path) in cases {
        let mut s = Scenario::imds()
            .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", base)
            .reply(token_expiring_at(T0_SECS + 3600));
        let run = s.run();
        assert_eq!(run.token().source(), Source::Imds, "{base}");
        let request = run.request();
        assert_eq!(request.authority, authority, "{base}");
        assert_eq!(
            request.path_and_query,
            format!("{path}?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com"),
            "{base}"
        );
        assert_eq!(request.header("Metadata"), Some("true"), "{base}");
    }
}

#[test]
fn malformed_endpoint_urls_are_configuration_errors_naming_the_variable() {
    #[rustfmt::skip]
    let bad_urls = [
        ("127.0.0.1:41564/msi/token", "it must start with http:// or https://"),
        ("ftp://127.0.0.1/msi/token", "it must start with http:// or https://"),
        ("http://", "it has no host"),
        ("http:///msi/token", "it has no host"),
        ("http://user:pw@127.0.0.1/msi/token", "it must not contain user info (@)"),
        ("http://127.0.0.1/msi/token#frag", "it must not contain a fragment (#)"),
        ("http://127.0.0.1/msi token", "it must not contain whitespace"),
        ("http://127.0.0.1:port/msi/token", "its port is not a number from 0 to 65535"),
        ("http://127.0.0.1:99999/msi/token", "its port is not a number from 0 to 65535"),
        ("http://127.0.0.1:/msi/token", "its port is not a number from 0 to 65535"),
        ("http://:41564/msi/token", "it has no host"),
        ("http://[::1/msi/token", "it has an unterminated IPv6 address"),
        ("http://[::1]x/msi/token", "it has text after the IPv6 address"),
        ("http://[::1]:/msi/token", "its port is not a number from 0 to 65535"),
        ("http://host:80:81/msi/token", "its port is not a number from 0 to 65535"),
        ("http://127.0.0.1:+80/msi/token", "its port is not a number from 0 to 65535"),
    ];
    // (variables that select the source, the variable that is malformed, source)
    type Setup = (Vars, &'static str, Source);
    #[rustfmt::skip]
    let setups: [Setup; 7] = [
        (&[("IDENTITY_HEADER", "secret")], "IDENTITY_ENDPOINT", Source::AppService),
        (&[("IDENTITY_HEADER", "secret"), ("IDENTITY_SERVER_THUMBPRINT", THUMBPRINT)], "IDENTITY_ENDPOINT", Source::ServiceFabric),
        (&[("IMDS_ENDPOINT", "http://localhost:40342")], "IDENTITY_ENDPOINT", Source::AzureArc),
        (&[("MSI_SECRET", "secret")], "MSI_ENDPOINT", Source::AppService2017),
        (&[], "MSI_ENDPOINT", Source::CloudShell),
        (&[], "AZURE_POD_IDENTITY_AUTHORITY_HOST", Source::Imds),
        (WORKLOAD, "AZURE_AUTHORITY_HOST", Source::WorkloadIdentity),
    ];
    for (others, variable, source) in setups {
        for (value, why) in bad_urls {
            // The pod-identity base loses its trailing slashes before the path is appended,
            // so a bare scheme no longer looks like one.
            let why = match (variable, value) {
                ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://") => {
                    "it must start with http:// or https://"
                }
                _ => why,
            };
            let mut s = Scenario::new().envs(others).env(variable, value);
            let run = s.run();
            run.assert_nothing_sent();
            let e = run.error();
            let case = format!("{variable}={value:?} for {source}");
            assert_eq!(e.kind(), ErrorKind::Configuration, "{case}");
            assert_eq!(e.class(), ErrorClass::AuthenticationFailed, "{case}");
            assert_eq!(e.mi_source(), Some(source), "{case}");
            assert_eq!(
                e.message(),
                format!(
                    "{source}: {variable} is not a valid endpoint URL: {why}; set it to an http:// or https:// URL"
                ),
                "{case}"
            );
        }
    }
}

#[test]
fn well_formed_endpoint_urls_are_accepted_as_given() {
    #[rustfmt::skip]
    let cases = [
        ("HTTP://127.0.0.1:41564/MSI/token", "127.0.0.1:41564", "/MSI/token"),
        ("http://[::1]:41564/msi/token", "[::1]:41564", "/msi/token"),
        ("http://[::1]/msi/token", "[::1]", "/msi/token"),
        ("http://localhost", "localhost", "/"),
        ("http://localhost:0/x", "localhost:0", "/x"),
        ("http://localhost:65535?x=1", "localhost:65535", "/?x=1"),
    ];
    for (value, authority, path_and_query) in cases {
        let env = snapshot(&[&[("IDENTITY_ENDPOINT", value), ("IDENTITY_HEADER", "s")]]);
        let d = detected(&env, false, SelectorKind::SystemAssigned);
        assert_eq!(d.endpoint.authority, authority, "{value}");
        assert_eq!(d.endpoint.path_and_query(&[]), path_and_query, "{value}");
    }
}

#[test]
fn malformed_endpoint_of_a_source_that_was_not_chosen_is_ignored() {
    // IDENTITY_ENDPOINT without a header or IMDS_ENDPOINT selects nothing, so it is never parsed.
    let mut s = Scenario::imds()
        .env("IDENTITY_ENDPOINT", "not a url")
        .reply(token_expiring_at(T0_SECS + 3600));
    assert_eq!(s.run().token().source(), Source::Imds);
}
