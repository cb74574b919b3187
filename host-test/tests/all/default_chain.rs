//! `default-credential` through the real component: a service principal's client secret
//! against the emulator's Entra endpoint, the chain walking to managed identity, the
//! aggregate error, `AZURE_TOKEN_CREDENTIALS`, and the secret kept out of every output.

use crate::util::*;
use azmi_host_test::emulator::{Config, Request};
use azmi_host_test::{Source, TokenError, TokenRequest};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn request() -> TokenRequest {
    TokenRequest::system_assigned(VAULT_SCOPE)
}

fn form(request: &Request) -> Vec<(String, String)> {
    String::from_utf8_lossy(&request.body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| percent_decode(&s.replace('+', " "));
            (decode(k), decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(start_paused = true)]
async fn a_client_secret_in_the_environment_gets_a_token_from_entra() {
    let config = Config::default();
    let app = config.system.as_ref().unwrap().client_id.clone();
    let authority = EMU.replace("http://", "https://");
    let env = [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", app.as_str()),
        ("AZURE_CLIENT_SECRET", config.client_secret.as_str()),
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
    ];
    let mut rig = rig(&env).await;
    let token = rig
        .guest
        .default_get_token_with(&request())
        .await
        .unwrap()
        .expect("a token");
    assert_eq!(token.source, Source::ClientSecret);
    assert!(rig.emulator.issued(&token.token).is_some());
    let requests = rig.emulator.requests();
    assert_eq!(
        requests.len(),
        1,
        "straight to the token endpoint, nothing else"
    );
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        form(sent),
        [
            ("client_id".to_string(), app.clone()),
            ("client_secret".to_string(), config.client_secret.clone()),
            ("scope".to_string(), VAULT_SCOPE.to_string()),
            ("grant_type".to_string(), "client_credentials".to_string()),
        ]
    );
    // Cached: the second call sends nothing.
    let again = rig
        .guest
        .default_get_token_with(&request())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.token, token.token);
    assert_eq!(rig.emulator.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_client_secret_stops_the_chain_with_the_fix_and_no_secret() {
    let config = Config::default();
    let app = config.system.as_ref().unwrap().client_id.clone();
    let authority = EMU.replace("http://", "https://");
    let wrong = "wrong~secret.value-that-must-not-leak";
    let env = [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", app.as_str()),
        ("AZURE_CLIENT_SECRET", wrong),
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", EMU),
    ];
    let mut rig = rig(&env).await;
    let result = rig.guest.default_get_token_with(&request()).await.unwrap();
    let Err(TokenError::AuthenticationFailed(info)) = &result else {
        panic!("{result:?}")
    };
    assert!(info.message.contains("AADSTS7000215"), "{info:?}");
    assert!(
        info.message
            .contains("set AZURE_CLIENT_SECRET to the secret's value")
    );
    assert_eq!(info.source, Some(Source::ClientSecret));
    assert_eq!(info.status, Some(401));
    assert!(!format!("{result:?}").contains(wrong));
    assert_eq!(
        rig.emulator.requests().len(),
        1,
        "no managed-identity request after Entra refused"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_service_principal_the_chain_reaches_managed_identity() {
    let mut rig = rig(&imds_env()).await;
    let token = rig
        .guest
        .default_get_token_with(&request())
        .await
        .unwrap()
        .expect("a token");
    assert_eq!(token.source, Source::Imds);
    // AAD Pod Identity (AZURE_POD_IDENTITY_AUTHORITY_HOST) is never probed: one request.
    assert_eq!(rig.emulator.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn when_nothing_is_configured_one_error_lists_every_credential() {
    let env = [("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")];
    let mut rig = rig(&env).await;
    let result = rig.guest.default_get_token_with(&request()).await.unwrap();
    let Err(TokenError::CredentialUnavailable(info)) = &result else {
        panic!("{result:?}")
    };
    assert_eq!(
        info.message,
        "DefaultAzureCredential: no credential could get a token. EnvironmentCredential: no service principal is configured (set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH). AzureCliCredential, AzureDeveloperCliCredential, AzurePowerShellCredential, VisualStudioCodeCredential: not available in a WebAssembly component, which cannot start processes or reach an OS broker; on a developer machine set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal"
    );
    assert!(rig.emulator.requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_invalid_azure_token_credentials_is_an_invalid_argument_naming_the_values() {
    let env = [("AZURE_TOKEN_CREDENTIALS", "AzureCli,Environment")];
    let mut rig = rig(&env).await;
    let result = rig.guest.default_get_token_with(&request()).await.unwrap();
    let Err(TokenError::InvalidArgument(message)) = &result else {
        panic!("{result:?}")
    };
    assert!(
        message.contains("valid values are prod, dev, EnvironmentCredential"),
        "{message}"
    );
}

/// Nothing configured, IMDS refused (a closed loopback port stands in for 169.254.169.254):
/// the whole chain answers `credential-unavailable` from the probe alone, in milliseconds
/// (the SDKs' chains take seconds here). The printed p50 is the closing note's figure.
#[tokio::test(flavor = "multi_thread")]
async fn the_whole_chain_with_nothing_configured_answers_in_milliseconds() {
    use azmi_host_test::Egress;
    use std::time::{Duration, Instant};
    let closed = closed_port();
    let env = Vec::new();
    let mut egress = Egress::network(&env, None).unwrap();
    egress
        .connect_imds_to(format!("127.0.0.1:{}", closed.port).parse().unwrap())
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        // A fresh instance each time: the chain has not stuck to a link yet.
        let mut guest = host()
            .instantiate(cli_like_config(env.clone(), egress.clone()))
            .await
            .unwrap();
        let start = Instant::now();
        let result = guest.default_get_token_with(&request()).await.unwrap();
        times.push(start.elapsed());
        let Err(TokenError::CredentialUnavailable(info)) = &result else {
            panic!("{result:?}")
        };
        assert!(
            info.message
                .contains("ManagedIdentityCredential: IMDS: the availability probe"),
            "{}",
            info.message
        );
    }
    times.sort();
    assert!(times[2] < Duration::from_secs(2), "sanity bound: {times:?}");
    eprintln!(
        "whole chain, nothing configured (get-token call, debug host): p50 {:?}, all {times:?}",
        times[2]
    );
}
