//! The 1 MiB response cap, twice: the component's own (it must hold whatever body a host
//! hands it; the in-memory emulator hands it everything) and the CLI host's (network egress
//! stops reading past the cap).

use crate::util::*;
use azmi::proto::MAX_RESPONSE_BYTES;
use azmi_host_test::emulator::{Config, Emulator, Fault};
use azmi_host_test::{Egress, IdentitySelector};

fn huge(bytes: usize) -> Fault {
    Fault::HugeBody { bytes, times: 1 }
}

#[tokio::test]
async fn the_component_refuses_a_body_over_1_mib_and_takes_one_at_the_limit() {
    let mut rig = rig(&imds_env()).await;
    rig.emulator.push_fault(huge(MAX_RESPONSE_BYTES + 1));
    let error = rig
        .error(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await;
    let message = error.message();
    assert!(
        message.contains("larger than the 1 MiB limit")
            && message.contains(&format!("more than {MAX_RESPONSE_BYTES} bytes")),
        "the component's own cap: {message}"
    );
    let mut rig = rig_with(Config::default(), &imds_env()).await;
    rig.emulator.push_fault(huge(MAX_RESPONSE_BYTES));
    rig.token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_host_stops_reading_a_body_over_1_mib() {
    let emulator = Emulator::new(Config::default());
    let (address, server) = emulator.serve(0).await.unwrap();
    // The host reads one byte past the cap (so the component can tell "over"), no more.
    emulator.push_fault(huge(2 * MAX_RESPONSE_BYTES));
    let env = vec![(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(),
        format!("http://{address}"),
    )];
    let egress = Egress::network(&env, None).unwrap();
    let mut guest = host()
        .instantiate(cli_like_config(env, egress))
        .await
        .unwrap();
    let result = guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap();
    server.abort();
    let message = result
        .expect_err("a token from a 1 MiB + 1 body")
        .message()
        .to_string();
    assert!(
        message.contains("larger than the 1 MiB limit (response too large)"),
        "the host's cap (wasi:http's body-size error): {message}"
    );
}
