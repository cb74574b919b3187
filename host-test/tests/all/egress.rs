//! What the host lets a guest see and reach: only the managed-identity variables, and only
//! the destinations its environment names (the CLI's allowlist).

use crate::util::*;
use azmi_host_test::{Egress, IdentitySelector};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn only_managed_identity_variables_reach_the_guest() {
    let managed = [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:4010/msi/token"),
        ("IDENTITY_HEADER", "header"),
        ("IDENTITY_SERVER_THUMBPRINT", "00"),
        ("MSI_ENDPOINT", "http://127.0.0.1:4010/msi/token"),
        ("MSI_SECRET", "secret"),
        ("IMDS_ENDPOINT", "http://127.0.0.1:4010"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", EMU),
        ("DEFAULT_IDENTITY_CLIENT_ID", "d"),
    ];
    let others = [
        ("HOME", "/root"),
        ("PATH", "/usr/bin"),
        ("HTTP_PROXY", "http://127.0.0.1:3128"),
        ("HTTPS_PROXY", "http://127.0.0.1:3128"),
        ("SSL_CERT_FILE", "/etc/ssl/cert.pem"),
        ("AZMI_ARC_TOKENS_DIR", "/tmp"),
        ("AZMI_IMDS_ADDRESS", "127.0.0.1:1"),
        ("azure_client_id", "lower case is another variable"),
        ("XIDENTITY_ENDPOINT", "prefix inside a name"),
        ("IMDS_ENDPOINT_EXTRA", "longer than the exact name"),
        ("AWS_SECRET_ACCESS_KEY", "a secret of another cloud"),
    ];
    let mut env = managed.to_vec();
    env.extend(others);
    let env: Vec<(&str, &str)> = env;
    let rig = rig(&env).await;
    assert_eq!(rig.guest.environment(), pairs(&managed).as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_allowlist_refuses_a_destination_its_environment_does_not_name() {
    // The guest is pointed at a listener; the CLI's policy is built for another endpoint.
    let listener = Recorder::start().await;
    let elsewhere = closed_port();
    let policy = pairs(&[(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        &format!("http://127.0.0.1:{}", elsewhere.port),
    )]);
    let guest_env = pairs(&[(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        &format!("http://{}", listener.address),
    )]);
    let egress = Egress::network(&policy, None).unwrap();
    let mut guest = host()
        .instantiate(cli_like_config(guest_env, egress))
        .await
        .unwrap();
    let result = guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap();
    let error = result.expect_err("a token through a refused destination");
    assert!(
        error
            .message()
            .contains("destination not allowed by the host"),
        "{error:?}"
    );
    let refused = guest.refused();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].url.starts_with(&format!(
            "http://{}/metadata/identity/oauth2/token?",
            listener.address
        )),
        "{refused:?}"
    );
    assert_eq!(listener.heads(), Vec::<String>::new(), "nothing was sent");
}
