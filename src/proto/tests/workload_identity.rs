// Over 350 lines on purpose: one file per source, one scenario per test.
//! Workload identity ([`crate::proto::workload`]): the federated token read, trimmed, re-read
//! at most every five minutes, the Entra client-assertion POST, AADSTS hints, precedence.

use serde_json::json;

use super::harness::{
    ASSERTION, Expect, Run, SECRET, Scenario, Scripted, T0, T0_SECS, TENANT, TOKEN, TOKEN_FILE,
    WORKLOAD_CLIENT, assert_form_request, form_pairs, json, token_expiring_at,
};
use crate::proto::detect::detect;
use crate::proto::workload::{ASSERTION_MAX_AGE_MS, ASSERTION_MAX_BYTES};
use crate::proto::{
    Action, EnvSnapshot, Error, ErrorClass, ErrorKind, FileErrorKind, FileRead, HostFacts,
    HttpRequest, IdentitySelector, Method, Scheme, SelectorKind, Source,
};

const FORM: &str = "application/x-www-form-urlencoded";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SCOPE: &str = "https://management.azure.com/.default";
const CLIENT: &str = "5e29463d-71da-4fe0-8e69-999b57db23b0";
const CORRELATION: &str = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";

/// Entra's v2 success shape: numbers, no `expires_on`.
fn entra_token() -> Scripted {
    json(
        200,
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": TOKEN}),
    )
}

fn entra_post<'a>(authority: &'a str, path: &'a str) -> Expect<'a> {
    Expect {
        method: Method::Post,
        scheme: Scheme::Https,
        authority,
        path,
        query: &[],
        headers: &[("Content-Type", FORM)],
    }
}

/// `/{tenant}/oauth2/v2.0/token` on the default authority.
fn default_path() -> String {
    format!("/{TENANT}/oauth2/v2.0/token")
}

/// The form, in order.
fn form<'a>(client_id: &'a str, scope: &'a str, assertion: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("client_id", client_id),
        ("scope", scope),
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ]
}

fn token_file_read() -> FileRead {
    FileRead {
        path: TOKEN_FILE.into(),
        max_len: ASSERTION_MAX_BYTES,
        follow_symlinks: true,
    }
}

/// The `client_assertion` a request carried.
fn assertion_sent(request: &HttpRequest) -> String {
    form_pairs(&request.body)
        .into_iter()
        .find(|(k, _)| k == "client_assertion")
        .map(|(_, v)| v)
        .expect("client_assertion field")
}

#[test]
fn reads_the_token_file_then_posts_the_client_assertion_to_the_default_authority() {
    let run = Scenario::workload_identity().reply(entra_token()).run();
    assert_eq!(run.steps(), ["read", "send"]);
    assert_eq!(run.file_reads, [token_file_read()]);
    assert_eq!(ASSERTION_MAX_BYTES, 64 * 1024);
    let request = run.request();
    assert_form_request(
        request,
        &entra_post("login.microsoftonline.com", &default_path()),
        &form(WORKLOAD_CLIENT, SCOPE, ASSERTION),
        true,
    );
    assert_eq!(
        request.url(),
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    );
    let token = run.token();
    assert_eq!(token.source(), Source::WorkloadIdentity);
    assert_eq!(token.secret(), TOKEN);
    assert_eq!(token.expires_on(), T0_SECS + 3599);
}

#[test]
fn token_file_contents_are_trimmed() {
    let run = Scenario::workload_identity()
        .file(TOKEN_FILE, format!("\n  {ASSERTION} \r\n\t"))
        .reply(entra_token())
        .run();
    assert_eq!(assertion_sent(run.request()), ASSERTION);
}

#[test]
fn scope_is_sent_as_given_with_default_suffix_kept() {
    for scope in ["https://vault.azure.net/.default", "api://my-app/.default"] {
        let run = Scenario::workload_identity()
            .scope(scope)
            .reply(entra_token())
            .run();
        assert_form_request(
            run.request(),
            &entra_post("login.microsoftonline.com", &default_path()),
            &form(WORKLOAD_CLIENT, scope, ASSERTION),
            true,
        );
    }
}

#[test]
fn authority_host_with_or_without_trailing_slash_and_with_a_path_prefix() {
    #[rustfmt::skip]
    let cases = [
        ("https://login.microsoftonline.us", "login.microsoftonline.us", format!("/{TENANT}/oauth2/v2.0/token")),
        ("https://login.microsoftonline.us/", "login.microsoftonline.us", format!("/{TENANT}/oauth2/v2.0/token")),
        ("https://login.microsoftonline.us//", "login.microsoftonline.us", format!("/{TENANT}/oauth2/v2.0/token")),
        ("https://127.0.0.1:8443/prefix", "127.0.0.1:8443", format!("/prefix/{TENANT}/oauth2/v2.0/token")),
        ("https://127.0.0.1:8443/prefix/", "127.0.0.1:8443", format!("/prefix/{TENANT}/oauth2/v2.0/token")),
    ];
    for (host, authority, path) in cases {
        let run = Scenario::workload_identity()
            .env("AZURE_AUTHORITY_HOST", host)
            .reply(entra_token())
            .run();
        assert_form_request(
            run.request(),
            &entra_post(authority, &path),
            &form(WORKLOAD_CLIENT, SCOPE, ASSERTION),
            true,
        );
    }
}

#[test]
fn client_id_from_the_selector_wins_over_azure_client_id() {
    let run = Scenario::workload_identity()
        .selector(IdentitySelector::ClientId(CLIENT.into()))
        .reply(entra_token())
        .run();
    assert_form_request(
        run.request(),
        &entra_post("login.microsoftonline.com", &default_path()),
        &form(CLIENT, SCOPE, ASSERTION),
        true,
    );
}

#[test]
fn client_id_selector_alone_supplies_the_client_id() {
    let run = Scenario::new()
        .env("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE)
        .env("AZURE_TENANT_ID", TENANT)
        .file(TOKEN_FILE, ASSERTION)
        .selector(IdentitySelector::ClientId(CLIENT.into()))
        .reply(entra_token())
        .run();
    assert_eq!(run.token().source(), Source::WorkloadIdentity);
    assert_form_request(
        run.request(),
        &entra_post("login.microsoftonline.com", &default_path()),
        &form(CLIENT, SCOPE, ASSERTION),
        true,
    );
}

/// A fetch that fails on the token file: one read, nothing sent.
#[track_caller]
fn file_failure(s: Scenario) -> Error {
    let mut s = s;
    let run = s.run();
    assert_eq!(run.steps(), ["read"]);
    run.assert_nothing_sent();
    let e = run.error().clone();
    assert_eq!(e.mi_source(), Some(Source::WorkloadIdentity));
    e
}

#[test]
fn empty_token_file_is_configuration() {
    for contents in ["", " \n\t\r\n"] {
        let e = file_failure(Scenario::workload_identity().file(TOKEN_FILE, contents));
        assert_eq!(e.kind(), ErrorKind::Configuration, "{contents:?}");
        assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
        assert_eq!(
            e.message(),
            "workload identity: AZURE_FEDERATED_TOKEN_FILE is empty; check the pod's azure-identity-token projection"
        );
    }
}

#[test]
fn token_file_that_is_not_text_is_configuration() {
    let e = file_failure(Scenario::workload_identity().file(TOKEN_FILE, b"\xff\xfe\x00".to_vec()));
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(
        e.message(),
        "workload identity: AZURE_FEDERATED_TOKEN_FILE is not UTF-8 text; it must hold the projected service-account token"
    );
}

#[test]
fn unreadable_token_file_is_configuration_naming_the_variable() {
    #[rustfmt::skip]
    let cases = [
        (FileErrorKind::NotFound, format!("workload identity: AZURE_FEDERATED_TOKEN_FILE does not exist (NotFound: {TOKEN_FILE})")),
        (FileErrorKind::TooLarge, "workload identity: AZURE_FEDERATED_TOKEN_FILE is larger than allowed; refusing it".to_string()),
        (FileErrorKind::NoAccess, "workload identity: the host gives no read access to AZURE_FEDERATED_TOKEN_FILE; preopen its directory read-only (the azmi CLI does when it exists)".to_string()),
        (FileErrorKind::Other, format!("workload identity: AZURE_FEDERATED_TOKEN_FILE could not be read (Other: {TOKEN_FILE})")),
    ];
    for (kind, message) in cases {
        let e = file_failure(Scenario::workload_identity().file_error(TOKEN_FILE, kind));
        assert_eq!(e.kind(), ErrorKind::Configuration, "{kind:?}");
        assert_eq!(e.message(), message, "{kind:?}");
    }
}

#[test]
fn bad_tenant_characters_are_configuration_before_any_read() {
    for tenant in [
        "contoso/../x",
        "a b",
        "t?x=1",
        "tenant#frag",
        "ten%2Fant",
        "ténant",
    ] {
        let run = Scenario::workload_identity()
            .env("AZURE_TENANT_ID", tenant)
            .run();
        run.assert_untouched();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{tenant}");
        assert_eq!(e.mi_source(), Some(Source::WorkloadIdentity));
        assert_eq!(
            e.message(),
            "workload identity: AZURE_TENANT_ID may contain only letters, digits, '-' and '.'; set it to your tenant id (a GUID) or domain"
        );
    }
    // A domain is a valid tenant.
    let run = Scenario::workload_identity()
        .env("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
        .reply(entra_token())
        .run();
    assert_eq!(
        run.request().path_and_query,
        "/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
}

#[test]
fn plain_http_authority_is_configuration_before_any_read() {
    let run = Scenario::workload_identity()
        .env("AZURE_AUTHORITY_HOST", "http://login.microsoftonline.com/")
        .run();
    run.assert_untouched();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(
        e.message(),
        "workload identity: AZURE_AUTHORITY_HOST must be an https:// URL"
    );
}

#[test]
fn token_file_is_re_read_only_after_five_minutes() {
    assert_eq!(ASSERTION_MAX_AGE_MS, 300_000);
    let rotated = "eyJhbGciOiJSUzI1NiJ9.rotated-assertion.sig";
    let mut s = Scenario::workload_identity().reply(entra_token());
    let first = s.run();
    assert_eq!(first.file_reads, [token_file_read()]);
    // The kubelet rotates the file; a different scope forces a fetch past the token cache.
    s.set_file(TOKEN_FILE, Ok(rotated.into()));
    s.advance(ASSERTION_MAX_AGE_MS - 1);
    s.set_scope("https://vault.azure.net/.default");
    s.push(entra_token());
    let inside = s.run();
    inside.assert_nothing_read();
    assert_eq!(
        assertion_sent(inside.request()),
        ASSERTION,
        "the copy read at T0"
    );

    s.advance(1);
    s.set_scope("https://storage.azure.com/.default");
    s.push(entra_token());
    let after = s.run();
    assert_eq!(after.steps(), ["read", "send"]);
    assert_eq!(assertion_sent(after.request()), rotated);

    // The clock for the next re-read restarts at the re-read.
    s.advance(ASSERTION_MAX_AGE_MS - 1);
    s.set_scope("https://graph.microsoft.com/.default");
    s.push(entra_token());
    s.run().assert_nothing_read();
}

#[test]
fn cached_token_needs_no_file_read() {
    let mut s = Scenario::workload_identity().reply(entra_token());
    s.run().token();
    s.advance(ASSERTION_MAX_AGE_MS * 2);
    let again = s.run();
    again.assert_untouched();
    assert_eq!(again.token().secret(), TOKEN);
}

#[test]
fn another_token_file_path_is_read_even_within_five_minutes() {
    let other = "/var/run/secrets/other/token";
    let mut s = Scenario::workload_identity()
        .file(other, "eyJ.other.sig")
        .reply(entra_token());
    s.run().token();
    s.set_env("AZURE_FEDERATED_TOKEN_FILE", other);
    s.set_scope("https://vault.azure.net/.default");
    s.push(entra_token());
    let run = s.run();
    assert_eq!(run.file_reads.len(), 1);
    assert_eq!(run.file_reads[0].path, other);
    assert_eq!(assertion_sent(run.request()), "eyJ.other.sig");
}

#[test]
fn failed_read_is_not_remembered() {
    let mut s = Scenario::workload_identity().file_error(TOKEN_FILE, FileErrorKind::NotFound);
    assert_eq!(s.run().error().kind(), ErrorKind::Configuration);
    s.set_file(TOKEN_FILE, Ok(ASSERTION.into()));
    s.push(entra_token());
    let run = s.run();
    assert_eq!(run.steps(), ["read", "send"]);
    assert_eq!(run.token().secret(), TOKEN);
}

fn entra_error(code: &str, description: &str) -> Scripted {
    json(
        400,
        json!({
            "error": code,
            "error_description": description,
            "error_codes": [700024],
            "timestamp": "2025-06-15 15:06:40Z",
            "trace_id": "a1b2c3d4-0000-4000-8000-000000000000",
            "correlation_id": CORRELATION,
            "error_uri": "https://login.microsoftonline.com/error?code=700024",
        }),
    )
}

#[test]
fn entra_errors_with_known_aadsts_codes_are_configuration_with_the_fix() {
    #[rustfmt::skip]
    let cases = [
        ("invalid_client", "AADSTS700024: Client assertion is not within its valid time range.", "the federated token has expired; check that the kubelet still rotates AZURE_FEDERATED_TOKEN_FILE"),
        ("invalid_request", "AADSTS70021: No matching federated identity record found for presented assertion.", "no federated credential on the identity matches this service account's issuer and subject; add one"),
        ("unauthorized_client", "AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.", "the client id is not an application in this tenant; check AZURE_CLIENT_ID and AZURE_TENANT_ID"),
    ];
    for (code, description, hint) in cases {
        let mut s = Scenario::workload_identity().reply(entra_error(code, description));
        let run = s.run();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{code}");
        assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
        assert_eq!(e.mi_source(), Some(Source::WorkloadIdentity));
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.code(), Some(code));
        assert_eq!(e.correlation_id(), Some(CORRELATION));
        assert_eq!(
            e.message(),
            format!(
                "workload identity: Entra ID refused the federated token (400 {code}: {description}); {hint}"
            )
        );
        assert_eq!(s.identity().cached_tokens(), 0);
    }
}

#[test]
fn entra_error_without_a_known_code_is_classified_by_status() {
    let run = Scenario::workload_identity()
        .reply(entra_error(
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        ))
        .run();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(
        e.message(),
        "workload identity: the request for the system-assigned identity was refused (400 invalid_scope: AADSTS1002012: The provided value for scope is not valid.)"
    );
    // Retried 3 times, re-reading the token file each time.
    let run = Scenario::workload_identity()
        .replies(json(503, json!({"error": "temporarily_unavailable"})), 4)
        .run();
    assert_eq!(run.requests.len(), 4);
    assert_eq!(run.error().kind(), ErrorKind::Service);
    assert_eq!(run.error().status(), Some(503));
}

#[test]
fn assertion_never_appears_in_any_message_or_debug_output() {
    let clean = |what: &str, text: &str| {
        assert!(
            !text.contains(ASSERTION),
            "{what} shows the assertion: {text}"
        );
        assert!(
            !text.contains("federated-assertion-payload"),
            "{what} shows part of the assertion: {text}"
        );
    };
    // Stepped by hand: after the read, before and after the send.
    let mut s = Scenario::workload_identity();
    let mut acquisition = s.start_fetch();
    clean("Acquisition before the read", &format!("{acquisition:?}"));
    let Some(Action::ReadFile(read)) = acquisition.poll_action(T0) else {
        panic!("expected the token file read");
    };
    assert_eq!(read, token_file_read());
    acquisition.handle_file(T0, Ok(format!("{ASSERTION}\n").into_bytes()));
    clean("Acquisition after the read", &format!("{acquisition:?}"));
    let Some(Action::Send(request)) = acquisition.poll_action(T0) else {
        panic!("expected the Entra request");
    };
    assert_eq!(assertion_sent(&request), ASSERTION, "sent as read, trimmed");
    clean("HttpRequest", &format!("{request:?}"));
    clean("HttpRequest {:#?}", &format!("{request:#?}"));
    clean("HttpRequest::url", &request.url());
    clean("Acquisition in flight", &format!("{acquisition:#?}"));
    acquisition.handle_response(T0, entra_token().into_response());
    let outcome = acquisition.poll_outcome().expect("outcome");
    clean("outcome", &format!("{outcome:?}"));
    let token = s.identity().finish(T0, outcome).expect("token");
    clean("token", &format!("{token:?}"));
    // The credential now keeps the assertion for five minutes.
    clean("ManagedIdentity", &format!("{:?}", s.identity()));
    clean("ManagedIdentity {:#?}", &format!("{:#?}", s.identity()));

    // A fetch that reuses the kept assertion.
    s.set_scope("https://vault.azure.net/.default");
    let acquisition = s.start_fetch();
    clean(
        "Acquisition with the kept assertion",
        &format!("{acquisition:#?}"),
    );

    // Failures after the read: the whole run.
    for (attempts, reply) in [
        (
            1,
            entra_error(
                "invalid_client",
                "AADSTS700024: Client assertion is not within its valid time range.",
            ),
        ),
        (4, json(500, json!({"error": "server_error"}))),
        (1, json(200, json!({"access_token": ""}))),
    ] {
        let run = Scenario::workload_identity().replies(reply, attempts).run();
        assert_eq!(run.requests.len(), attempts);
        let e = run.error();
        clean("error", &e.to_string());
        clean("error Debug", &format!("{e:?}"));
        clean("Run", &format!("{:?}", run.requests));
    }
}

#[test]
fn host_without_file_access_refuses_workload_identity_before_any_request() {
    let run = Scenario::workload_identity().no_file_access().run();
    run.assert_untouched();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.mi_source(), Some(Source::WorkloadIdentity), "never IMDS");
    assert_eq!(
        e.message(),
        "workload identity needs to read a file (AZURE_FEDERATED_TOKEN_FILE), which this host cannot do (it has no file access); run the azmi component in a host with wasi:filesystem"
    );
}

/// A group of environment variables.
type Vars = &'static [(&'static str, &'static str)];

const WORKLOAD_ENV: [(&str, &str); 3] = [
    ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE),
    ("AZURE_TENANT_ID", TENANT),
    ("AZURE_CLIENT_ID", WORKLOAD_CLIENT),
];

#[test]
fn platform_sources_win_over_workload_identity() {
    // An explicit platform source is not overridden (JS does override App Service).
    #[rustfmt::skip]
    let platforms: [(Vars, bool, Source); 7] = [
        (&[("IDENTITY_ENDPOINT", "https://10.0.0.4:2377/t"), ("IDENTITY_HEADER", "s"), ("IDENTITY_SERVER_THUMBPRINT", "0123456789ABCDEF0123456789ABCDEF01234567")], false, Source::ServiceFabric),
        (&[("IDENTITY_ENDPOINT", "http://127.0.0.1:41564/msi/token"), ("IDENTITY_HEADER", "s")], false, Source::AppService),
        (&[("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth"), ("MSI_SECRET", "s"), ("DEFAULT_IDENTITY_CLIENT_ID", CLIENT)], false, Source::AzureMl),
        (&[("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth"), ("MSI_SECRET", "s")], false, Source::AppService2017),
        (&[("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")], false, Source::CloudShell),
        (&[("IDENTITY_ENDPOINT", "http://localhost:40342/t"), ("IMDS_ENDPOINT", "http://localhost:40342")], false, Source::AzureArc),
        (&[], true, Source::AzureArc),
    ];
    for (platform, arc_agent, source) in platforms {
        for selector in [SelectorKind::SystemAssigned, SelectorKind::ClientId] {
            let env = EnvSnapshot::from_pairs(WORKLOAD_ENV.iter().chain(platform).copied());
            let facts = HostFacts {
                arc_agent_present: arc_agent,
                no_file_access: false,
            };
            let d = detect(&env, facts, selector).expect("detected");
            assert_eq!(d.source, source, "{source} with {selector:?}");
        }
    }
    // End to end: App Service is asked, the token file is never read.
    let run = Scenario::app_service()
        .envs(&WORKLOAD_ENV)
        .reply(token_expiring_at(T0_SECS + 3600))
        .run();
    assert_eq!(run.token().source(), Source::AppService);
    run.assert_nothing_read();
    assert_eq!(run.request().header("X-IDENTITY-HEADER"), Some(SECRET));
}

#[test]
fn workload_identity_wins_over_imds_and_pod_identity() {
    // On AKS, IMDS would answer with the node's identity.
    for extra in [
        &[][..],
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:2579")][..],
    ] {
        let run: Run = Scenario::workload_identity()
            .envs(extra)
            .reply(entra_token())
            .run();
        assert_eq!(run.token().source(), Source::WorkloadIdentity, "{extra:?}");
        assert_eq!(run.request().authority, "login.microsoftonline.com");
        assert_eq!(run.steps(), ["read", "send"]);
    }
}
