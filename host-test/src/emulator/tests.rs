// About 1000 lines: one test per emulator behaviour the host tests rely on.
//! Unit tests for the emulator: per-source behaviour, faults, expiry formats, the request log and
//! one real loopback round trip.
#![allow(
    clippy::disallowed_methods,
    reason = "host-side tests read the real clock and the Arc key files"
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::*;

const VAULT: &str = "https://vault.azure.net";
const ARM: &str = "https://management.azure.com/";

fn emu() -> Emulator {
    Emulator::new(Config::default())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn req(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let headers = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    Request::from_parts(method, target, headers, body.as_bytes().to_vec())
}

/// An IMDS request with `Metadata: true` and the given query.
fn imds(query: &str) -> Request {
    let target = format!("/metadata/identity/oauth2/token?{query}");
    req("GET", &target, &[("Metadata", "true")], "")
}

/// An App Service 2019 request with the right identity header.
fn app_service(query: &str) -> Request {
    let target = format!("/msi/token?api-version=2019-08-01&{query}");
    let header = Config::default().identity_header;
    req("GET", &target, &[("X-IDENTITY-HEADER", &header)], "")
}

fn json(resp: &Response) -> Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&resp.body)))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ua(n: usize) -> Identity {
    Config::default().user_assigned[n].clone()
}

fn system_id() -> String {
    Config::default().system.unwrap().client_id
}

/// Asserts a successful token response and returns (body, issued record).
fn assert_token(e: &Emulator, resp: &Response, resource: &str, client_id: &str) -> (Value, Issued) {
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let body = json(resp);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("emu."), "{token}");
    let issued = e.issued(token).expect("token recorded");
    assert_eq!(issued.resource, resource);
    assert_eq!(issued.client_id, client_id);
    (body, issued)
}

fn assert_near(actual: u64, expected: u64) {
    assert!(actual.abs_diff(expected) <= 1, "{actual} vs {expected}");
}

// ---------------------------------------------------------------- IMDS

#[test]
fn imds_system_success() {
    let e = emu();
    let before = now();
    let resp = e.handle(imds(&format!(
        "api-version=2018-02-01&resource={}",
        enc(ARM)
    )));
    let (body, issued) = assert_token(&e, &resp, ARM, &system_id());
    assert_eq!(body["client_id"], system_id());
    assert_eq!(body["resource"], ARM);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["refresh_token"], "");
    assert_eq!(body["expires_in"], "86399");
    let expires_on: u64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_on, issued.expires_on);
    assert_near(expires_on, before + 86_399);
    let not_before: u64 = body["not_before"].as_str().unwrap().parse().unwrap();
    assert_near(not_before, before);
    assert_eq!(e.token_requests(), 1);
}

#[test]
fn imds_each_selector_kind() {
    let e = emu();
    for n in 0..2 {
        let id = ua(n);
        for (name, value) in [
            ("client_id", id.client_id.clone()),
            ("object_id", id.object_id.clone()),
            ("msi_res_id", id.resource_id.clone()),
            ("client_id", id.client_id.to_uppercase()),
        ] {
            // Selector first: parameter order must not matter.
            let q = format!(
                "{name}={}&resource={}&api-version=2018-02-01",
                enc(&value),
                enc(VAULT)
            );
            let resp = e.handle(imds(&q));
            let (body, _) = assert_token(&e, &resp, VAULT, &id.client_id);
            assert_eq!(body["client_id"], id.client_id.as_str(), "{name}={value}");
        }
    }
}

#[test]
fn imds_missing_metadata_header() {
    let e = emu();
    let target = format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}");
    for headers in [vec![], vec![("Metadata", "false")]] {
        let resp = e.handle(req("GET", &target, &headers, ""));
        assert_eq!(resp.status, 400);
        let body = json(&resp);
        assert_eq!(body["error"], "bad_request_102");
        assert_eq!(
            body["error_description"],
            "Required metadata header not specified"
        );
    }
    assert_eq!(e.token_requests(), 2);
}

#[test]
fn imds_rejects_forwarded_and_bad_api_version() {
    let e = emu();
    let q = format!("api-version=2018-02-01&resource={VAULT}");
    let mut r = imds(&q);
    r.headers
        .push(("x-forwarded-for".into(), "10.0.0.1".into()));
    assert_eq!(e.handle(r).status, 400);
    for q in [
        format!("resource={VAULT}"),
        format!("api-version=2017-09-01&resource={VAULT}"),
    ] {
        let resp = e.handle(imds(&q));
        assert_eq!(resp.status, 400);
        assert_eq!(json(&resp)["error"], "invalid_request");
    }
}

#[test]
fn imds_multiple_selectors_rejected() {
    let e = emu();
    let id = ua(0);
    let q = format!(
        "api-version=2018-02-01&resource={VAULT}&client_id={}&object_id={}",
        id.client_id, id.object_id
    );
    let resp = e.handle(imds(&q));
    assert_eq!(resp.status, 400);
    assert_eq!(json(&resp)["error"], "invalid_request");
}

#[test]
fn imds_unknown_identity() {
    let e = emu();
    for sel in [
        "client_id=99999999-9999-9999-9999-999999999999",
        "object_id=nope",
        "msi_res_id=%2Fsubscriptions%2Fx",
        "client_id=",
    ] {
        let resp = e.handle(imds(&format!(
            "api-version=2018-02-01&resource={VAULT}&{sel}"
        )));
        assert_eq!(resp.status, 400, "{sel}");
        let body = json(&resp);
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["error_description"], "Identity not found");
    }
    // No system identity: system requests fail, user-assigned ones still work.
    let e = Emulator::new(Config {
        system: None,
        ..Config::default()
    });
    let resp = e.handle(imds(&format!("api-version=2018-02-01&resource={VAULT}")));
    assert_eq!(resp.status, 400);
    assert_eq!(json(&resp)["error_description"], "Identity not found");
    let q = format!(
        "api-version=2018-02-01&resource={VAULT}&client_id={}",
        ua(1).client_id
    );
    assert_eq!(e.handle(imds(&q)).status, 200);
}

#[test]
fn imds_bad_resource() {
    let e = emu();
    for resource in [
        "management.azure.com",
        "http://vault.azure.net",
        "https://",
        "https://unknown.example",
        "https://unknown.example/",
    ] {
        let q = format!("api-version=2018-02-01&resource={}", enc(resource));
        let resp = e.handle(imds(&q));
        assert_eq!(resp.status, 400, "{resource}");
        let body = json(&resp);
        assert_eq!(body["error"], "invalid_resource", "{resource}");
        let text = body["error_description"].as_str().unwrap();
        assert!(
            text.starts_with("AADSTS500011: The resource principal named "),
            "{text}"
        );
        assert!(text.contains(resource), "{text}");
    }
    let resp = e.handle(imds("api-version=2018-02-01"));
    assert_eq!(resp.status, 400);
    assert_eq!(json(&resp)["error"], "invalid_request");
    assert!(e.requests().len() == 6 && e.token_requests() == 6);
}

// ---------------------------------------------------------------- App Service 2019

#[test]
fn app_service_success_and_selectors() {
    let e = emu();
    let resp = e.handle(app_service(&format!("resource={}", enc(VAULT))));
    let (body, issued) = assert_token(&e, &resp, VAULT, &system_id());
    assert_eq!(body["client_id"], system_id());
    assert_eq!(body["resource"], VAULT);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("expires_in").is_none());
    assert_eq!(body["expires_on"], issued.expires_on.to_string());
    let id = ua(1);
    for (name, value) in [
        ("client_id", &id.client_id),
        ("object_id", &id.object_id),
        ("principal_id", &id.object_id),
        ("mi_res_id", &id.resource_id),
    ] {
        let resp = e.handle(app_service(&format!(
            "{name}={}&resource={VAULT}",
            enc(value)
        )));
        let (body, _) = assert_token(&e, &resp, VAULT, &id.client_id);
        assert_eq!(body["client_id"], id.client_id.as_str());
    }
}

/// Asserts the App Service error shape and returns the correlation id.
fn assert_app_service_error(resp: &Response, status: u16, message: &str) -> String {
    assert_eq!(resp.status, status);
    let body = json(resp);
    assert_eq!(body["statusCode"], status);
    assert_eq!(body["message"], message);
    let id = body["correlationId"].as_str().unwrap().to_string();
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
    id
}

#[test]
fn app_service_header_checks() {
    let e = emu();
    let target = format!("/msi/token?api-version=2019-08-01&resource={VAULT}");
    let missing = e.handle(req("GET", &target, &[], ""));
    let a = assert_app_service_error(&missing, 400, "No X-IDENTITY-HEADER in request");
    let wrong = e.handle(req("GET", &target, &[("x-identity-header", "nope")], ""));
    assert_eq!(wrong.status, 401);
    let b = json(&wrong)["correlationId"].as_str().unwrap().to_string();
    assert_ne!(a, b, "correlation ids are unique");
    assert_eq!(json(&wrong)["statusCode"], 401);
}

#[test]
fn app_service_unknown_identity_and_resource() {
    let e = emu();
    let resp = e.handle(app_service(&format!("resource={VAULT}&client_id=nope")));
    assert_app_service_error(&resp, 400, "Unable to load requested managed identity.");
    let resp = e.handle(app_service("resource=https%3A%2F%2Funknown.example"));
    assert_eq!(resp.status, 500);
    let body = json(&resp);
    assert_eq!(body["statusCode"], 500);
    assert!(body["message"].as_str().unwrap().contains("AADSTS500011"));
    assert!(body["correlationId"].is_string());
}

// ---------------------------------------------------------------- other sources

#[test]
fn machine_learning_2017() {
    let e = emu();
    let secret = Config::default().msi_secret;
    let target = |q: &str| format!("/MSI/token/?api-version=2017-09-01&resource={VAULT}{q}");
    let get = |q: &str| e.handle(req("GET", &target(q), &[("secret", &secret)], ""));
    for (q, expected) in [
        (String::new(), system_id()),
        ("&clientid=".to_string(), system_id()),
        (format!("&clientid={}", system_id()), system_id()),
        (format!("&clientid={}", ua(0).client_id), ua(0).client_id),
        (format!("&object_id={}", ua(0).object_id), system_id()),
    ] {
        let resp = get(&q);
        let (body, issued) = assert_token(&e, &resp, VAULT, &expected);
        assert_eq!(body["expires_on"], issued.expires_on, "a JSON number");
    }
    assert_app_service_error(
        &get("&clientid=nope"),
        400,
        "Unable to load requested managed identity.",
    );
    let wrong = e.handle(req("GET", &target(""), &[("secret", "nope")], ""));
    assert_eq!(wrong.status, 401);
    assert_eq!(e.handle(req("GET", &target(""), &[], "")).status, 400);
}

#[test]
fn cloud_shell() {
    let e = emu();
    let h = [
        ("Metadata", "true"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let body = format!("resource={}", enc(ARM));
    let resp = e.handle(req("POST", "/oauth2/token", &h, &body));
    let (json_body, _) = assert_token(&e, &resp, ARM, &system_id());
    assert_eq!(json_body["expires_in"], "86399");
    let refused = e.handle(req(
        "POST",
        "/oauth2/token",
        &h,
        &format!("{body}&client_id=x"),
    ));
    assert_eq!(refused.status, 400);
    assert_eq!(json(&refused)["error"], "invalid_request");
    let no_header = e.handle(req("POST", "/oauth2/token", &h[1..], &body));
    assert_eq!(json(&no_header)["error"], "bad_request_102");
}

/// A fresh, empty scratch directory for Arc key files.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("azmi-emu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs the Arc challenge flow for `query`, returning the final response.
fn arc_flow(e: &Emulator, query: &str) -> Response {
    let target = format!("/metadata/identity/oauth2/token?api-version=2020-06-01&{query}");
    let first = e.handle(req("GET", &target, &[("Metadata", "true")], ""));
    assert_eq!(first.status, 401);
    let challenge = first
        .headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.clone())
        .expect("challenge header");
    let path = challenge
        .strip_prefix("Basic realm=")
        .expect("Basic realm=");
    let realm = std::path::Path::new(path);
    assert_eq!(realm.parent(), Some(e.config().arc_realm_dir.as_path()));
    assert!(path.ends_with(".key"));
    let key =
        std::fs::read_to_string(e.config().arc_key_dir.join(realm.file_name().unwrap())).unwrap();
    let auth = format!("Basic {key}");
    e.handle(req(
        "GET",
        &target,
        &[("Metadata", "true"), ("Authorization", &auth)],
        "",
    ))
}

#[test]
fn arc_challenge_flow() {
    let dir = scratch_dir("arc");
    let e = Emulator::new(Config {
        arc_key_dir: dir.clone(),
        ..Config::default()
    });
    // The challenge leg takes no fault; the authenticated leg does.
    e.push_fault(Fault::Lifetime { secs: 60, times: 1 });
    let resp = arc_flow(&e, &format!("resource={VAULT}"));
    let (body, issued) = assert_token(&e, &resp, VAULT, &system_id());
    assert_eq!(
        issued.expires_on,
        body["expires_on"].as_str().unwrap().parse::<u64>().unwrap()
    );
    assert_eq!(body["expires_in"], "60");
    let id = ua(0);
    let resp = arc_flow(&e, &format!("resource={VAULT}&object_id={}", id.object_id));
    let (body, _) = assert_token(&e, &resp, VAULT, &id.client_id);
    assert_eq!(body["client_id"], id.client_id.as_str());
    assert_eq!(body["object_id"], id.object_id.as_str());
    assert_eq!(body["msi_res_id"], id.resource_id.as_str());
    // A wrong key gets a new challenge.
    let target = format!("/metadata/identity/oauth2/token?api-version=2020-06-01&resource={VAULT}");
    let h = [("Metadata", "true"), ("Authorization", "Basic wrong")];
    assert_eq!(e.handle(req("GET", &target, &h, "")).status, 401);
    // An old agent ignores the selector and echoes nothing.
    e.set_arc_user_assigned(false);
    let resp = arc_flow(&e, &format!("resource={VAULT}&client_id={}", id.client_id));
    let (body, _) = assert_token(&e, &resp, VAULT, &system_id());
    assert!(body.get("client_id").is_none());
    assert_eq!(e.token_requests(), 7);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn service_fabric() {
    let e = emu();
    let target =
        format!("/metadata/identity/oauth2/token?api-version=2019-07-01-preview&resource={VAULT}");
    let secret = Config::default().identity_header;
    let resp = e.handle(req("GET", &target, &[("Secret", &secret)], ""));
    let (body, issued) = assert_token(&e, &resp, VAULT, &system_id());
    assert_eq!(body["expires_on"], issued.expires_on);
    let resp = e.handle(req("GET", &target, &[], ""));
    assert_eq!(resp.status, 401);
    assert_eq!(json(&resp)["error"]["code"], "SecretHeaderNotFound");
    assert!(json(&resp)["error"]["correlationId"].is_string());
}

#[test]
fn workload_identity() {
    let e = emu();
    let id = ua(0);
    let path = "/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";
    let form = |client: &str, scope: &str, grant: &str| {
        format!(
            "client_id={client}&scope={}&grant_type={grant}&client_assertion_type={}&client_assertion={}",
            enc(scope),
            enc("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            enc(&Config::default().federated_token)
        )
    };
    let ok = form(
        &id.client_id,
        "https://vault.azure.net/.default",
        "client_credentials",
    );
    let resp = e.handle(req("POST", path, &[], &ok));
    let (body, issued) = assert_token(&e, &resp, VAULT, &id.client_id);
    assert_eq!(body["expires_in"], 86_399);
    assert_near(issued.expires_on, now() + 86_399);
    let cases = [
        (
            form(
                "nope",
                "https://vault.azure.net/.default",
                "client_credentials",
            ),
            "unauthorized_client",
        ),
        (
            form(&id.client_id, VAULT, "client_credentials"),
            "invalid_scope",
        ),
        (
            form(
                &id.client_id,
                "https://vault.azure.net/.default",
                "password",
            ),
            "unsupported_grant_type",
        ),
        (
            form(
                &id.client_id,
                "https://unknown.example/.default",
                "client_credentials",
            ),
            "invalid_resource",
        ),
        (format!("client_id={}", id.client_id), "invalid_request"),
    ];
    for (body, code) in cases {
        let resp = e.handle(req("POST", path, &[], &body));
        assert_eq!(resp.status, 400, "{body}");
        let err = json(&resp);
        assert_eq!(err["error"], code);
        assert!(err["error_codes"].is_array() && err["correlation_id"].is_string());
    }
}

// ---------------------------------------------------------------- faults

fn vault_imds() -> Request {
    imds(&format!("api-version=2018-02-01&resource={VAULT}"))
}

#[test]
fn fault_status_times_and_retry_after() {
    let e = emu();
    e.push_fault(Fault::Status {
        status: 503,
        times: 2,
        retry_after: Some("7".into()),
        body: None,
    });
    for _ in 0..2 {
        let resp = e.handle(vault_imds());
        assert_eq!(resp.status, 503);
        assert!(resp.headers.contains(&("retry-after".into(), "7".into())));
        assert_eq!(json(&resp)["error"], "server_error");
    }
    assert!(e.pending_faults().is_empty());
    assert_eq!(e.handle(vault_imds()).status, 200);
    // Default body follows the source's shape; a given body is sent verbatim.
    e.push_fault(Fault::Status {
        status: 429,
        times: 1,
        retry_after: None,
        body: None,
    });
    let resp = e.handle(app_service(&format!("resource={VAULT}")));
    assert_eq!(resp.status, 429);
    assert_eq!(json(&resp)["statusCode"], 429);
    assert!(!resp.headers.iter().any(|(n, _)| n == "retry-after"));
    e.push_fault(Fault::Status {
        status: 410,
        times: 1,
        retry_after: None,
        body: Some("gone".into()),
    });
    let resp = e.handle(vault_imds());
    assert_eq!((resp.status, resp.body.as_slice()), (410, &b"gone"[..]));
}

#[test]
fn fault_delay() {
    let e = emu();
    e.push_fault(Fault::Delay {
        by: Duration::from_millis(1500),
        times: 1,
    });
    let resp = e.handle(vault_imds());
    assert_eq!(resp.status, 200);
    assert_eq!(resp.delay, Some(Duration::from_millis(1500)));
    json(&resp);
    assert_eq!(e.handle(vault_imds()).delay, None);
}

#[test]
fn fault_malformed_empty_html() {
    let e = emu();
    e.push_fault(Fault::MalformedBody { times: 1 });
    e.push_fault(Fault::EmptyBody { times: 1 });
    e.push_fault(Fault::Html {
        status: 502,
        times: 1,
    });
    let resp = e.handle(vault_imds());
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (200, &b"{not json"[..])
    );
    let resp = e.handle(vault_imds());
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
    let resp = e.handle(vault_imds());
    assert_eq!(resp.status, 502);
    assert!(
        resp.headers
            .contains(&("content-type".into(), "text/html".into()))
    );
    let text = String::from_utf8(resp.body).unwrap();
    assert!(
        text.starts_with("<html>") && text.contains("502 Bad Gateway"),
        "{text}"
    );
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(e.handle(vault_imds()).status, 200);
}

#[test]
fn fault_huge_body() {
    let e = emu();
    e.push_fault(Fault::HugeBody {
        bytes: 100_000,
        times: 1,
    });
    let resp = e.handle(vault_imds());
    assert_eq!(resp.body.len(), 100_000);
    assert_token(&e, &resp, VAULT, &system_id());
    assert!(e.handle(vault_imds()).body.len() < 1_000);
}

#[test]
fn fault_lifetime_and_fifo() {
    let e = emu();
    e.push_fault(Fault::Lifetime { secs: 0, times: 0 }); // ignored
    e.push_fault(Fault::Lifetime {
        secs: 120,
        times: 1,
    });
    e.push_fault(Fault::Status {
        status: 500,
        times: 1,
        retry_after: None,
        body: None,
    });
    // A rejected request leaves a shaping fault in place.
    let bad = e.handle(imds(&format!(
        "api-version=2018-02-01&resource={VAULT}&client_id=x"
    )));
    assert_eq!(bad.status, 400);
    assert_eq!(e.pending_faults().len(), 2);
    let before = now();
    let resp = e.handle(vault_imds());
    let (body, issued) = assert_token(&e, &resp, VAULT, &system_id());
    assert_eq!(body["expires_in"], "120");
    assert_near(issued.expires_on, before + 120);
    assert_eq!(e.handle(vault_imds()).status, 500);
    assert_eq!(e.handle(vault_imds()).status, 200);
}

/// Days since 1970-01-01 of a proleptic Gregorian date (independent of the emulator's code).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses the absolute date formats back to Unix seconds.
fn parse_date(format: ExpiryFormat, text: &str) -> u64 {
    let n: Vec<i64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (y, mo, d, mut h, mi, s) = match format {
        ExpiryFormat::Iso8601Z | ExpiryFormat::Automation => {
            assert_eq!(n.len(), 6, "{text}");
            (n[0], n[1], n[2], n[3], n[4], n[5])
        }
        ExpiryFormat::Iso8601Fraction7 => {
            assert_eq!(&n[6..], [0, 0, 0], "{text}");
            (n[0], n[1], n[2], n[3], n[4], n[5])
        }
        _ => {
            assert_eq!(&n[6..], [0, 0], "{text}");
            (n[2], n[0], n[1], n[3], n[4], n[5])
        }
    };
    if format == ExpiryFormat::AppService2017Windows {
        assert!((1..=12).contains(&h), "{text}");
        h = h % 12 + if text.contains(" PM ") { 12 } else { 0 };
    }
    (days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + s) as u64
}

#[test]
fn expiry_format_rendering_is_exact() {
    let cases = [
        (
            1_506_484_173,
            ExpiryFormat::Iso8601Z,
            "2017-09-27T03:49:33Z",
        ),
        (
            1_506_484_173,
            ExpiryFormat::Iso8601Fraction7,
            "2017-09-27T03:49:33.0000000+00:00",
        ),
        (
            1_506_484_173,
            ExpiryFormat::AppService2017Linux,
            "09/27/2017 03:49:33 +00:00",
        ),
        (
            1_506_484_173,
            ExpiryFormat::AppService2017Windows,
            "9/27/2017 3:49:33 AM +00:00",
        ),
        (
            1_506_484_173,
            ExpiryFormat::Automation,
            "2017-09-27 03:49:33Z",
        ),
        (
            951_782_400,
            ExpiryFormat::AppService2017Windows,
            "2/29/2000 12:00:00 AM +00:00",
        ),
        (
            951_825_600,
            ExpiryFormat::AppService2017Windows,
            "2/29/2000 12:00:00 PM +00:00",
        ),
        (
            951_868_799,
            ExpiryFormat::AppService2017Windows,
            "2/29/2000 11:59:59 PM +00:00",
        ),
        (
            1_704_067_199,
            ExpiryFormat::Iso8601Z,
            "2023-12-31T23:59:59Z",
        ),
        (
            4_102_444_800,
            ExpiryFormat::Automation,
            "2100-01-01 00:00:00Z",
        ),
    ];
    for (epoch, format, expected) in cases {
        let (name, value) = format.render(epoch, 10).unwrap();
        assert_eq!((name, value.as_str().unwrap()), ("expires_on", expected));
    }
    assert_eq!(ExpiryFormat::Missing.render(1, 1), None);
}

#[test]
fn expiry_formats_round_trip() {
    let e = emu();
    for format in ExpiryFormat::ALL {
        e.push_fault(Fault::Expiry { format, times: 1 });
        let before = now();
        let resp = e.handle(app_service(&format!("resource={VAULT}")));
        let (body, issued) = assert_token(&e, &resp, VAULT, &system_id());
        assert_near(issued.expires_on, before + 86_399);
        let on = body.get("expires_on");
        let in_ = body.get("expires_in");
        let decoded = match format {
            ExpiryFormat::EpochString => on.unwrap().as_str().unwrap().parse().unwrap(),
            ExpiryFormat::EpochNumber => on.unwrap().as_u64().unwrap(),
            ExpiryFormat::ExpiresInOnly => {
                before + in_.unwrap().as_str().unwrap().parse::<u64>().unwrap()
            }
            ExpiryFormat::ExpiresInNumberOnly => before + in_.unwrap().as_u64().unwrap(),
            ExpiryFormat::Missing => {
                assert!(on.is_none() && in_.is_none(), "{body}");
                continue;
            }
            _ => parse_date(format, on.unwrap().as_str().unwrap()),
        };
        assert_near(decoded, issued.expires_on);
        match format {
            ExpiryFormat::ExpiresInOnly | ExpiryFormat::ExpiresInNumberOnly => {
                assert!(on.is_none())
            }
            _ => assert!(in_.is_none()),
        }
    }
    assert!(e.pending_faults().is_empty());
}

// ---------------------------------------------------------------- log, parsing, other routes

#[test]
fn from_parts_decodes_query() {
    let r = Request::from_parts(
        "GET",
        "http://169.254.169.254/a/b?x=1%202&y=a+b&z=%2B%zz&flag&&empty=#frag",
        vec![("X-Custom".into(), "V".into())],
        vec![],
    );
    assert_eq!(r.path, "/a/b");
    let q: Vec<(&str, &str)> = r
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        q,
        [
            ("x", "1 2"),
            ("y", "a b"),
            ("z", "+%zz"),
            ("flag", ""),
            ("empty", "")
        ]
    );
    assert_eq!(r.headers, [("x-custom".to_string(), "V".to_string())]);
    assert_eq!(r.header("X-CUSTOM"), Some("V"));
    assert_eq!(r.query_param("y"), Some("a b"));
    assert_eq!(Request::from_parts("GET", "", vec![], vec![]).path, "/");
}

#[test]
fn request_log() {
    let e = emu();
    e.handle(vault_imds());
    e.handle(req("GET", "/nowhere?a=1", &[("X-Thing", "1")], ""));
    e.handle(req("POST", "/echo/x", &[], "payload"));
    let log = e.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].path, "/metadata/identity/oauth2/token");
    assert_eq!(log[0].query_param("resource"), Some(VAULT));
    assert_eq!(log[0].header("metadata"), Some("true"));
    assert_eq!(log[0].headers[0].0, "metadata");
    assert_eq!(log[1], req("GET", "/nowhere?a=1", &[("x-thing", "1")], ""));
    assert_eq!(log[2].body, b"payload");
    assert_eq!(e.token_requests(), 1);
    e.clear_requests();
    assert!(e.requests().is_empty());
    assert_eq!(e.token_requests(), 0);
}

#[test]
fn protected_secret_resource() {
    let e = emu();
    let token_for = |resource: &str| {
        let resp = e.handle(imds(&format!(
            "api-version=2018-02-01&resource={}",
            enc(resource)
        )));
        json(&resp)["access_token"].as_str().unwrap().to_string()
    };
    let vault = token_for(VAULT);
    let vault_slash = token_for("https://vault.azure.net/");
    let arm = token_for(ARM);
    e.push_fault(Fault::Lifetime { secs: 0, times: 1 });
    let expired = token_for(VAULT);
    e.clear_requests();
    let get = |auth: Option<String>| {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        e.handle(req("GET", "/secrets/db", &headers, ""))
    };
    for token in [&vault, &vault_slash] {
        let resp = get(Some(format!("Bearer {token}")));
        assert_eq!(resp.status, 200);
        assert_eq!(json(&resp)["value"], "secret-db");
    }
    for auth in [
        None,
        Some(format!("Bearer {arm}")),
        Some(format!("Bearer {expired}")),
        Some("Bearer emu.999.ffff".into()),
        Some(format!("Basic {vault}")),
    ] {
        let resp = get(auth.clone());
        assert_eq!(resp.status, 401, "{auth:?}");
        assert!(resp.headers.iter().any(|(n, _)| n == "www-authenticate"));
    }
    assert_eq!(e.token_requests(), 0);
    assert_eq!(e.requests().len(), 7);
}

#[test]
fn echo_and_not_found() {
    let e = emu();
    let resp = e.handle(req(
        "GET",
        "/echo/a?b=c",
        &[("Authorization", "Bearer t")],
        "",
    ));
    assert_eq!(resp.status, 200);
    let body = json(&resp);
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/echo/a");
    assert_eq!(body["authorization"], "Bearer t");
    assert_eq!(body["query"][0], serde_json::json!(["b", "c"]));
    let resp = e.handle(req("GET", "/echo", &[], ""));
    assert_eq!(json(&resp)["authorization"], Value::Null);
    for (method, path) in [
        ("GET", "/nope"),
        ("POST", "/metadata/identity/oauth2/token"),
        ("GET", "/oauth2/token"),
    ] {
        let resp = e.handle(req(method, path, &[], ""));
        assert_eq!(resp.status, 404, "{method} {path}");
        assert_eq!(json(&resp)["error"], "not_found");
    }
    assert_eq!(e.token_requests(), 0);
    assert_eq!(e.requests().len(), 5);
}

#[test]
fn default_config_ids() {
    let c = Config::default();
    let system = c.system.unwrap();
    assert_eq!(system.client_id, "11111111-1111-1111-1111-111111111111");
    assert_eq!(c.user_assigned.len(), 2);
    assert_eq!(
        c.user_assigned[1].client_id,
        "33333333-3333-3333-3333-333333333333"
    );
    assert_ne!(c.user_assigned[0].object_id, c.user_assigned[1].object_id);
    assert_eq!(c.token_lifetime_secs, 86_399);
    assert_eq!(
        c.arc_key_dir,
        std::path::Path::new("/var/opt/azcmagent/tokens")
    );
}

// ---------------------------------------------------------------- real loopback server

/// Sends one GET over an existing HTTP/1 connection; returns (status, headers, body).
async fn http_get(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    addr: std::net::SocketAddr,
    target: &str,
) -> (u16, hyper::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    let request = hyper::Request::get(target)
        .header("host", addr.to_string())
        .header("metadata", "true")
        .body(http_body_util::Empty::new())
        .unwrap();
    // Wait until the keep-alive connection has finished the previous exchange.
    sender.ready().await.unwrap();
    let resp = sender.send_request(request).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status.as_u16(), parts.headers, body)
}

async fn connect(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_loopback() {
    let e = emu();
    let (addr, server) = e.serve(0).await.unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let target = format!(
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
        enc(ARM)
    );

    // Two requests on one keep-alive connection, one on a second concurrent connection.
    let mut first = connect(addr).await;
    let mut second = connect(addr).await;
    let (status, headers, body) = http_get(&mut first, addr, &target).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(headers["content-length"], body.len().to_string().as_str());
    let body: Value = serde_json::from_slice(&body).unwrap();
    let issued = e.issued(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(issued.client_id, system_id());
    assert_eq!(issued.resource, ARM);

    e.push_fault(Fault::Delay {
        by: Duration::from_millis(50),
        times: 1,
    });
    let started = std::time::Instant::now();
    let (slow, fast) = tokio::join!(
        http_get(&mut first, addr, &target),
        http_get(&mut second, addr, "/echo/hi?x=%20y")
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(slow.0, 200);
    assert_eq!(fast.0, 200);
    let echo: Value = serde_json::from_slice(&fast.2).unwrap();
    assert_eq!(echo["path"], "/echo/hi");

    let log = e.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/metadata/identity/oauth2/token");
    assert_eq!(log[0].query_param("resource"), Some(ARM));
    assert_eq!(log[0].header("Metadata"), Some("true"));
    assert_eq!(log[0].header("host"), Some(addr.to_string().as_str()));
    assert!(
        log.iter()
            .any(|r| r.path == "/echo/hi" && r.query_param("x") == Some(" y"))
    );
    assert_eq!(e.token_requests(), 2);

    server.abort();
    assert!(server.await.unwrap_err().is_cancelled());
}
