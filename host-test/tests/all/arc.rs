//! Azure Arc key-file rules through the real component (the challenge names a file the client
//! reads and sends as a credential, so only a `.key` file of at most 4096 bytes directly in the
//! agent's key directory is accepted, or a hostile endpoint could exfiltrate any file): every
//! bad challenge is a typed error, exactly one challenge round trip, no key bytes in messages.

use crate::util::*;
use azmi_host_test::emulator::{ArcTamper, Config};
use azmi_host_test::{IdentitySelector, Source};

struct ArcRig {
    rig: Rig,
    keys: Scratch,
}

async fn arc_rig(tamper: ArcTamper) -> ArcRig {
    let keys = Scratch::new(&format!("arc-{}", tamper_name(&tamper)));
    let config = Config {
        arc_key_dir: keys.0.clone(),
        ..Config::default()
    };
    let endpoint = format!("{EMU}/metadata/identity/oauth2/token");
    let rig = rig_full(
        config,
        &[("IDENTITY_ENDPOINT", &endpoint), ("IMDS_ENDPOINT", EMU)],
        vec![(keys.0.clone(), "/var/opt/azcmagent/tokens".into())],
    )
    .await;
    rig.emulator.set_arc_tamper(tamper);
    ArcRig { rig, keys }
}

fn tamper_name(t: &ArcTamper) -> &'static str {
    match t {
        ArcTamper::None => "good",
        ArcTamper::Realm(_) => "realm",
        ArcTamper::OversizeKey(_) => "oversize",
        ArcTamper::Symlink(_) => "symlink",
        ArcTamper::MissingKey => "missing",
        ArcTamper::AlwaysChallenge => "second401",
    }
}

/// Runs one system-assigned request and returns the error, asserting the common rules.
async fn refused(arc: &mut ArcRig, requests: usize, secret_on_disk: Option<&str>) -> String {
    let error = arc
        .rig
        .error(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await;
    let info = failed(&error);
    assert_eq!(info.source, Some(Source::AzureArc));
    assert_eq!(
        arc.rig.emulator.requests().len(),
        requests,
        "{:?}",
        arc.rig.emulator.requests()
    );
    assert!(
        arc.rig.emulator.issued_count() == 0,
        "no token may be minted"
    );
    for entry in std::fs::read_dir(&arc.keys.0).unwrap() {
        let key = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        if !key.is_empty() {
            assert!(
                !info.message.contains(&key),
                "key bytes leaked: {}",
                info.message
            );
        }
    }
    if let Some(secret) = secret_on_disk {
        assert!(
            !format!("{error:?}").contains(secret),
            "file contents leaked"
        );
    }
    info.message.clone()
}

#[tokio::test]
async fn arc_good_key_gets_a_token_in_one_round_trip() {
    let mut arc = arc_rig(ArcTamper::None).await;
    let token = arc
        .rig
        .guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.source, Source::AzureArc);
    let requests = arc.rig.emulator.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("authorization"), None);
    let key = std::fs::read_to_string(arc.keys.0.join("emulator-1.key")).unwrap();
    assert_eq!(
        requests[1].header("authorization"),
        Some(format!("Basic {key}").as_str())
    );
}

#[tokio::test]
async fn arc_realm_outside_the_key_directory_is_refused_before_reading() {
    let mut arc = arc_rig(ArcTamper::Realm("/etc/shadow".into())).await;
    let message = refused(&mut arc, 1, None).await;
    assert!(
        message.contains("outside the Arc key directory"),
        "{message}"
    );
}

#[tokio::test]
async fn arc_dotdot_traversal_is_refused() {
    let realm = "/var/opt/azcmagent/tokens/../../../../etc/passwd.key".to_string();
    let mut arc = arc_rig(ArcTamper::Realm(realm)).await;
    let message = refused(&mut arc, 1, None).await;
    assert!(
        message.contains("outside the Arc key directory"),
        "{message}"
    );
}

#[tokio::test]
async fn arc_non_key_file_is_refused() {
    let mut arc = arc_rig(ArcTamper::Realm(
        "/var/opt/azcmagent/tokens/secret.txt".into(),
    ))
    .await;
    let message = refused(&mut arc, 1, None).await;
    assert!(message.contains("not a .key file"), "{message}");
}

#[tokio::test]
async fn arc_symlinked_key_is_refused_without_reading_the_target() {
    let outside = Scratch::new("arc-symlink-target");
    let target = outside.0.join("private.txt");
    std::fs::write(&target, "TOP-SECRET-CONTENTS").unwrap();
    let mut arc = arc_rig(ArcTamper::Symlink(target)).await;
    let message = refused(&mut arc, 1, Some("TOP-SECRET-CONTENTS")).await;
    assert!(message.contains("not a regular file"), "{message}");
}

#[tokio::test]
async fn arc_oversize_key_is_refused() {
    let mut arc = arc_rig(ArcTamper::OversizeKey(4097)).await;
    let message = refused(&mut arc, 1, None).await;
    assert!(message.contains("larger than allowed"), "{message}");
}

#[tokio::test]
async fn arc_missing_key_is_refused() {
    let mut arc = arc_rig(ArcTamper::MissingKey).await;
    let message = refused(&mut arc, 1, None).await;
    assert!(message.contains("does not exist"), "{message}");
}

#[tokio::test]
async fn arc_second_401_is_refused_after_exactly_one_round_trip() {
    let mut arc = arc_rig(ArcTamper::AlwaysChallenge).await;
    let message = refused(&mut arc, 2, None).await;
    assert!(message.contains("second 401"), "{message}");
}

#[tokio::test]
async fn arc_old_agent_that_ignores_user_assigned_fails_closed() {
    let mut arc = arc_rig(ArcTamper::None).await;
    arc.rig.emulator.set_arc_user_assigned(false);
    let ua = Config::default().user_assigned[0].clone();
    let error = arc
        .rig
        .error(VAULT_SCOPE, &IdentitySelector::ClientId(ua.client_id))
        .await;
    let info = failed(&error);
    assert!(info.message.contains("did not confirm"), "{}", info.message);
}

#[tokio::test]
async fn arc_detected_by_the_agent_binary_uses_the_default_endpoint() {
    let agent = Scratch::new("arc-agent");
    std::fs::write(agent.0.join("himds"), "").unwrap();
    let keys = Scratch::new("arc-agent-keys");
    let config = Config {
        arc_key_dir: keys.0.clone(),
        ..Config::default()
    };
    let emulator = azmi_host_test::emulator::Emulator::new(config);
    let mut guest = host()
        .instantiate(azmi_host_test::GuestConfig {
            env: Vec::new(),
            egress: azmi_host_test::Egress::emulator(&emulator, "http://127.0.0.1:40342"),
            preopens: vec![
                (agent.0.clone(), "/opt/azcmagent/bin".into()),
                (keys.0.clone(), "/var/opt/azcmagent/tokens".into()),
            ],
            tokio_clock: false,
            keyvalue: None,
        })
        .await
        .unwrap();
    let token = guest
        .get_token(VAULT_SCOPE, &IdentitySelector::SystemAssigned)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.source, Source::AzureArc);
    assert_eq!(emulator.requests().len(), 2);
    assert!(guest.refused().is_empty());
}
