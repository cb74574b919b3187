//! What a client learns from a local 503 (the class, the source, a request id) and what the
//! operator learns from the log line carrying that id (everything else): issue 11, defect 3.

use super::{Calls, IMDS, T0, logged, own_store, reply, root};
use crate::proxy_wasm::verdict::REPLY_MESSAGE;
use serde_json::json;

const SUBSCRIPTION: &str = "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6";
const RESOURCE_ID: &str = "/subscriptions/0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6/resourceGroups/rg-payments-prod/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-payments";
const SERVICE_TEXT: &str = "Identity not found for tenant contoso-internal on host mi-node-17";

#[test]
fn the_503_body_names_class_source_and_request_id_and_the_log_has_the_details() {
    let mut mem = own_store();
    let configuration = json!({
        "scope": "https://vault.azure.net/.default", "cluster": "imds",
        "identity": {"resource_id": RESOURCE_ID},
    })
    .to_string();
    let mut root = root(
        &configuration,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)],
    );
    let mut calls = Calls::default();
    root.on_request(T0, 1, &mut mem);
    root.on_tick(T0, &mut calls, &mut mem);
    assert!(calls.sent[0].path_and_query.contains("rg-payments-prod"));
    let refused = crate::proto::HttpResponse {
        status: 400,
        headers: vec![("x-ms-request-id".into(), "corr-7c1d".into())],
        body: json!({
            "error": "invalid_request", "error_description": SERVICE_TEXT,
            "correlation_id": "corr-7c1d",
        })
        .to_string()
        .into_bytes(),
    };
    let effects = root.on_response(T0, 1, Ok(refused), &mut calls, &mut mem);
    let body = reply(&effects.resume[0].1);

    // The client: the class, the source, the id to quote, a fixed sentence. Nothing else.
    assert_eq!(
        body,
        json!({
            "error": "authentication_failed", "source": "imds",
            "request_id": body["request_id"], "message": REPLY_MESSAGE,
        })
    );
    let id = body["request_id"].as_str().unwrap();
    assert_eq!(id.len(), 16, "{id}");
    let text = body.to_string();
    for detail in [
        RESOURCE_ID,
        SUBSCRIPTION,
        "rg-payments-prod",
        "127.0.0.1",
        "Identity not found",
        "contoso",
        "invalid_request",
        "corr-7c1d",
        "400",
    ] {
        assert!(!text.contains(detail), "the 503 shows {detail:?}: {text}");
    }

    // The operator: one warning with the same id and every detail.
    let line = logged(&effects.log, &body);
    for detail in [
        "Identity not found",
        r#""status":400"#,
        r#""code":"invalid_request""#,
        r#""correlation_id":"corr-7c1d""#,
        r#""source":"imds""#,
    ] {
        assert!(line.contains(detail), "the log lacks {detail:?}: {line}");
    }
}

#[test]
fn an_environment_refused_at_start_logs_its_details_under_the_id_every_503_carries() {
    let mut mem = own_store();
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "arc"}"#,
        &[
            (
                "IDENTITY_ENDPOINT",
                "http://127.0.0.1:40342/metadata/identity/oauth2/token",
            ),
            ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
        ],
    );
    let start = root.refusal().expect("logged at start");
    let first = root.on_request(T0, 1, &mut mem);
    let body = reply(&first.verdict);
    assert_eq!(first.log, None, "reported once, at start");
    assert_eq!(body["source"], "azure_arc");
    assert_eq!(body["message"], REPLY_MESSAGE);
    let id = body["request_id"].as_str().unwrap();
    assert!(start.contains(id), "{start}");
    assert!(start.contains("file"), "the reason: {start}");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    let again = root.on_request(T0.plus_millis(60_000), 2, &mut mem);
    assert_eq!(reply(&again.verdict)["request_id"], id);
}

#[test]
fn each_failed_fetch_is_a_new_request_id() {
    let mut mem = own_store();
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds"}"#,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)],
    );
    let mut calls = Calls {
        refuse: true,
        ..Calls::default()
    };
    let mut ids = Vec::new();
    for (n, at) in [T0, T0.plus_millis(super::FAILURE_HOLD_MS)]
        .into_iter()
        .enumerate()
    {
        let id = u32::try_from(n).unwrap();
        root.on_request(at, id, &mut mem);
        let effects = root.on_tick(at, &mut calls, &mut mem);
        let body = reply(&effects.resume[0].1);
        logged(&effects.log, &body);
        ids.push(body["request_id"].clone());
    }
    assert_ne!(
        ids[0], ids[1],
        "the second failure is logged on its own line"
    );
}
