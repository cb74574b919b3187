//! The `detect` target: source detection, `check` and `start` on arbitrary environments.

use super::Input;
use super::oracle::{assert_no_leak, check_error};
use super::parsers::{NOW, selector};
use super::world::SECRET;
use crate::proto::detect::detect as detect_source;
use crate::proto::{
    Action, EnvSnapshot, ErrorKind, HostFacts, ManagedIdentity, Poll, SelectorKind, Source, Start,
    TokenRequest, token_endpoint, var,
};

/// Every variable detection reads, and one it must ignore.
const NAMES: [&str; 13] = [
    var::IDENTITY_ENDPOINT,
    var::IDENTITY_HEADER,
    var::IDENTITY_SERVER_THUMBPRINT,
    var::IMDS_ENDPOINT,
    var::MSI_ENDPOINT,
    var::MSI_SECRET,
    var::DEFAULT_IDENTITY_CLIENT_ID,
    var::AZURE_POD_IDENTITY_AUTHORITY_HOST,
    var::AZURE_CLIENT_ID,
    var::AZURE_TENANT_ID,
    var::AZURE_FEDERATED_TOKEN_FILE,
    var::AZURE_AUTHORITY_HOST,
    "HTTPS_PROXY",
];

/// Values that make detection go deep (the fuzzer also gets raw text).
const VALUES: [&str; 14] = [
    "",
    "http://127.0.0.1:41564/msi/token",
    "https://10.0.0.4:2377/metadata/identity/oauth2/token",
    "http://localhost:40342",
    "https://login.microsoftonline.com/",
    "http://[::1]:8080/",
    "0123456789ABCDEF0123456789ABCDEF01234567",
    "01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "/var/run/secrets/azure/tokens/azure-identity-token",
    "Zq8rT3vW9xKp2mN7bL4cJ6hF",
    "ftp://example.com/",
    "http://user:pass@host:99999/x?y#z",
    "https://",
];

const SCOPES: [&str; 4] = [
    "https://management.azure.com/.default",
    "https://vault.azure.net",
    "api://AzureADTokenExchange/.default",
    "not a scope",
];

/// What the precedence table in the `source` module docs says, restated.
fn expected_source(env: &EnvSnapshot, facts: HostFacts, kind: SelectorKind) -> Source {
    let has = |name| env.has(name);
    if has(var::IDENTITY_ENDPOINT) && has(var::IDENTITY_HEADER) {
        if has(var::IDENTITY_SERVER_THUMBPRINT) {
            Source::ServiceFabric
        } else {
            Source::AppService
        }
    } else if has(var::MSI_ENDPOINT) {
        match (has(var::MSI_SECRET), has(var::DEFAULT_IDENTITY_CLIENT_ID)) {
            (true, true) => Source::AzureMl,
            (true, false) => Source::AppService2017,
            (false, _) => Source::CloudShell,
        }
    } else if (has(var::IDENTITY_ENDPOINT) && has(var::IMDS_ENDPOINT)) || facts.arc_agent_present {
        Source::AzureArc
    } else if has(var::AZURE_FEDERATED_TOKEN_FILE)
        && has(var::AZURE_TENANT_ID)
        && (has(var::AZURE_CLIENT_ID) || kind != SelectorKind::SystemAssigned)
    {
        Source::WorkloadIdentity
    } else {
        Source::Imds
    }
}

/// Bytes: facts, selector, scope, then `(name, value)` entries (a name byte: a known variable
/// or free text; a value byte: a dictionary value or free text).
///
/// Detection follows the precedence table; [`ManagedIdentity::check`] refuses exactly what
/// [`ManagedIdentity::start`] refuses; a started fetch asks for the endpoint detection named;
/// no error and no request `Debug` shows `IDENTITY_HEADER` or `MSI_SECRET`.
pub fn detect(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let facts = HostFacts {
        arc_agent_present: flags & 1 != 0,
        no_file_access: flags & 2 != 0,
    };
    let selector = selector(input.byte());
    let scope = input.pick(&SCOPES);
    let mut pairs = Vec::new();
    while !input.is_empty() && pairs.len() < 16 {
        let b = input.byte();
        let name = match NAMES.get(usize::from(b)) {
            Some(name) => (*name).to_string(),
            None if b < 128 => NAMES[usize::from(b) % NAMES.len()].to_string(),
            None => input.text(),
        };
        let v = input.byte();
        let value = match VALUES.get(usize::from(v)) {
            Some(value) => (*value).to_string(),
            None => input.text(),
        };
        pairs.push((name, value));
    }
    let env = EnvSnapshot::from_pairs(pairs.iter().cloned());
    let kind = selector.kind();
    let want = expected_source(&env, facts, kind);
    // The dictionary's secret is looked for; free text could be any ordinary word.
    let secrets: Vec<&str> = [var::IDENTITY_HEADER, var::MSI_SECRET]
        .iter()
        .filter_map(|n| env.get(n))
        .filter(|v| *v == SECRET)
        .collect();
    // Everything but the secrets may be quoted in messages.
    let mut fed: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != var::IDENTITY_HEADER && k != var::MSI_SECRET)
        .map(|(_, v)| v.clone())
        .collect();
    fed.push(scope.into());
    fed.push(selector.value().into());
    // A secret the caller also put (in part) in another variable or the selector may show
    // there, even re-encoded (`%29` + `xKp…` reads as `9xKp…`): only an environment whose
    // other inputs share no 4 characters with the secret is checked.
    let near = |secret: &str, text: &str| {
        (0..=secret.len().saturating_sub(4)).any(|i| text.contains(&secret[i..i + 4]))
    };
    let secrets: Vec<&str> = secrets
        .into_iter()
        .filter(|s| !fed.iter().any(|f| near(s, f)))
        .collect();

    let detected = detect_source(&env, facts, kind);
    match &detected {
        Ok(d) => assert_eq!(d.source, want, "detected {:?} in {env:?}", d.source),
        Err(e) => {
            assert_eq!(e.mi_source(), Some(want), "refused as another source: {e}");
            assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
            check_error(e, &secrets, &fed);
        }
    }
    let endpoint = token_endpoint(&env, facts, kind);
    assert_eq!(endpoint.is_ok(), detected.is_ok());

    let checked = ManagedIdentity::check(&env, facts, scope, &selector);
    let request = TokenRequest::new(scope, &selector);
    let mut identity = ManagedIdentity::new();
    let started = identity.start(NOW, &request, &env, facts, [7; 16]);
    match (&checked, started) {
        (Ok(()), Ok(Start::Fetch(mut fetch))) => {
            assert_eq!(fetch.source(), want);
            let endpoint = endpoint.unwrap_or_else(|e| panic!("check passed, detection not: {e}"));
            match fetch.poll(NOW) {
                Poll::Act(Action::Send(request)) => {
                    assert_eq!(request.scheme, endpoint.scheme);
                    assert_eq!(request.authority, endpoint.authority);
                    let debug = format!("{request:?}");
                    for secret in &secrets {
                        assert_no_leak(&debug, secret, &fed);
                    }
                }
                Poll::Act(Action::ReadFile(read)) => {
                    assert_eq!(want, Source::WorkloadIdentity);
                    assert_eq!(
                        Some(read.path.as_str()),
                        env.get(var::AZURE_FEDERATED_TOKEN_FILE)
                    );
                }
                other => panic!("a new fetch did not act: {other:?}"),
            }
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, &b, "check and start refuse differently");
            check_error(&b, &secrets, &fed);
        }
        (checked, started) => {
            panic!("check said {checked:?}, start said {started:?}")
        }
    }
}
