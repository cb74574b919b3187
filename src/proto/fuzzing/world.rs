//! The scripted host of the `acquisition` target: managed-identity fixtures, and every answer
//! (status, headers, body, delay, transport failure) decoded from the fuzz bytes.

use super::Input;
use crate::proto::{
    EnvSnapshot, HostFacts, HttpResponse, IdentitySelector, TransportError, TransportErrorKind,
    UnixMillis,
};

/// The shared secret of the App Service, Azure ML and Service Fabric fixtures.
pub(super) const SECRET: &str = "Zq8rT3vW9xKp2mN7bL4cJ6hF";
/// The Arc key file's contents.
pub(super) const ARC_KEY: &str = "arcK3y-7Hq2Lm9Xw4Rt8Vb6N";
/// The federated token in the workload-identity fixture's file.
pub(super) const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrOHMifQ.c2lnbmF0dXJlLXF3ZXJ0eQ";
/// The key file the fixture challenges name.
pub(super) const KEY_PATH: &str = "/var/opt/azcmagent/tokens/x.key";
/// Tokens the answers carry (a fuzzer may also send its own).
pub(super) const TOKENS: [&str; 4] = [
    "eyJ0eXAiOiJKV1QifQ.payload-one.sig",
    "tok-two_~+/==",
    "3",
    "bad token\r\n",
];
/// Statuses that matter to some source's retry policy or classifier.
pub(super) const STATUSES: [u16; 16] = [
    200, 200, 200, 201, 400, 401, 403, 404, 408, 410, 429, 500, 502, 503, 504, 599,
];
/// Reply delays in ms: instant, typical, around every timeout, past the call deadline.
pub(super) const DELAYS: [u64; 8] = [0, 0, 15, 1_000, 5_001, 30_000, 61_000, 200_000];

/// One scripted managed-identity host: environment, facts, the secrets it holds.
pub(super) struct Fixture {
    pub env: EnvSnapshot,
    pub facts: HostFacts,
    pub secrets: Vec<&'static str>,
}

pub(super) fn fixture(which: u8) -> Fixture {
    let env = |pairs: &[(&str, &str)]| EnvSnapshot::from_pairs(pairs.iter().copied());
    let (env, secrets): (EnvSnapshot, Vec<&'static str>) = match which % 9 {
        0 => (env(&[]), vec![]),
        1 => (
            env(&[
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:41564/msi/token"),
                ("IDENTITY_HEADER", SECRET),
            ]),
            vec![SECRET],
        ),
        2 => (
            env(&[
                ("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth"),
                ("MSI_SECRET", SECRET),
            ]),
            vec![SECRET],
        ),
        3 => (
            env(&[
                ("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth"),
                ("MSI_SECRET", SECRET),
                (
                    "DEFAULT_IDENTITY_CLIENT_ID",
                    "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                ),
            ]),
            vec![SECRET],
        ),
        4 => (
            env(&[("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")]),
            vec![],
        ),
        5 => (
            env(&[
                (
                    "IDENTITY_ENDPOINT",
                    "http://localhost:40342/metadata/identity/oauth2/token",
                ),
                ("IMDS_ENDPOINT", "http://localhost:40342"),
            ]),
            vec![ARC_KEY],
        ),
        6 => (
            env(&[
                (
                    "IDENTITY_ENDPOINT",
                    "https://10.0.0.4:2377/metadata/identity/oauth2/token",
                ),
                ("IDENTITY_HEADER", SECRET),
                (
                    "IDENTITY_SERVER_THUMBPRINT",
                    "0123456789ABCDEF0123456789ABCDEF01234567",
                ),
            ]),
            vec![SECRET],
        ),
        7 => (
            env(&[
                (
                    "AZURE_FEDERATED_TOKEN_FILE",
                    "/var/run/secrets/azure/tokens/azure-identity-token",
                ),
                ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
                ("AZURE_CLIENT_ID", "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"),
            ]),
            vec![ASSERTION],
        ),
        _ => (
            env(&[(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                "http://127.0.0.1:2579/",
            )]),
            vec![],
        ),
    };
    Fixture {
        env,
        facts: HostFacts::default(),
        secrets,
    }
}

/// `text` with every character as a JSON `\u` escape: decodes to `text`, matches nothing raw.
pub(super) fn json_escaped(text: &str) -> String {
    text.chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect()
}

/// A JSON string fragment (already escaped) from the bytes: a plain word, a secret echoed in
/// some encoding, or raw text.
pub(super) fn service_text(input: &mut Input<'_>, secrets: &[&str]) -> String {
    let secret = secrets
        .get(input.below(secrets.len().max(1)))
        .copied()
        .unwrap_or(SECRET);
    match input.byte() % 8 {
        0 => "invalid_request".into(),
        1 => format!("echo {secret}"),
        2 => format!("echo {}", json_escaped(secret)),
        // Padding puts the escaped secret across the 300-character quoting limit.
        3 => format!(
            "{}{}",
            "x".repeat(270 + input.below(40)),
            json_escaped(secret)
        ),
        4 => "AADSTS700024: Client assertion is not within its valid time range.".into(),
        5 => "Identity not found".into(),
        _ => serde_json::to_string(&input.text())
            .map(|quoted| quoted[1..quoted.len() - 1].to_string())
            .unwrap_or_default(),
    }
}

/// A token answer's body: the token, its expiry in some format, and maybe the echo Arc needs.
pub(super) fn token_body(
    input: &mut Input<'_>,
    now: UnixMillis,
    selector: &IdentitySelector,
) -> Vec<u8> {
    let token = match input.byte() % 6 {
        i @ 0..=3 => TOKENS[usize::from(i)].to_string(),
        _ => input.text(),
    };
    let now_secs = now.as_secs();
    let lifetime: i64 = input.pick(&[3_599, 86_399, 60, 1, 0, -5, 604_801, 7_200]);
    let at = now_secs.saturating_add_signed(lifetime);
    let expires_on = match input.byte() % 4 {
        0 => serde_json::json!(at.to_string()),
        1 => serde_json::json!(at),
        2 => serde_json::json!(at * 1000),
        _ => serde_json::Value::Null,
    };
    let mut body = serde_json::json!({
        "access_token": token,
        "expires_on": expires_on,
        "expires_in": lifetime.max(0).to_string(),
        "token_type": input.pick(&["Bearer", "bearer", "pop"]),
        "resource": "https://management.azure.com/",
    });
    let echo = input.byte();
    if !echo.is_multiple_of(3) {
        let value = if echo % 3 == 1 {
            selector.value()
        } else {
            "someone-else"
        };
        for field in ["client_id", "object_id", "msi_res_id"] {
            body[field] = value.into();
        }
    }
    if echo & 0x80 != 0 {
        body["refresh_in"] = u64::from(input.u16()).into();
    }
    body.to_string().into_bytes()
}

/// One answer to a request, and how long it takes.
pub(super) fn reply(
    input: &mut Input<'_>,
    now: UnixMillis,
    selector: &IdentitySelector,
    secrets: &[&str],
) -> (Result<HttpResponse, TransportError>, u64) {
    if input.is_empty() {
        let refused = TransportError::new(TransportErrorKind::ConnectionRefused, "refused");
        return (Err(refused), 0);
    }
    let kind = input.byte();
    let delay = input.pick(&DELAYS);
    if kind % 8 >= 6 {
        let kinds = [
            TransportErrorKind::ConnectionRefused,
            TransportErrorKind::Timeout,
            TransportErrorKind::ConnectTimeout,
            TransportErrorKind::Dns,
            TransportErrorKind::Tls,
            TransportErrorKind::Denied,
            TransportErrorKind::ResponseTooLarge,
            TransportErrorKind::Other,
        ];
        let error = TransportError::new(input.pick(&kinds), "the fake host says no");
        return (Err(error), delay);
    }
    let status = match input.byte() {
        b if usize::from(b) < STATUSES.len() * 12 => STATUSES[usize::from(b) % STATUSES.len()],
        b => 100 + u16::from(b) * 2,
    };
    let flags = input.byte();
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if flags & 1 != 0 {
        let value = match input.byte() % 5 {
            0 => "2".to_string(),
            1 => "120".to_string(),
            2 => "Sun, 06 Nov 1994 08:49:37 GMT".to_string(),
            3 => "Fri, 31 Dec 9999 23:59:59 GMT".to_string(),
            _ => input.text(),
        };
        headers.push(("Retry-After".into(), value));
    }
    if flags & 2 != 0 {
        let value = match input.byte() % 4 {
            0 | 1 => format!("Basic realm={KEY_PATH}"),
            2 => "Basic realm=/var/opt/azcmagent/tokens/../../../etc/shadow.key".into(),
            _ => input.text(),
        };
        headers.push(("WWW-Authenticate".into(), value));
    }
    if flags & 4 != 0 {
        headers.push(("retry-after-ms".into(), u64::from(input.u32()).to_string()));
    }
    let body = match (flags >> 3) % 4 {
        0 => token_body(input, now, selector),
        1 => format!(
            r#"{{"error":"{}","error_description":"{}","correlation_id":"{}"}}"#,
            service_text(input, secrets),
            service_text(input, secrets),
            service_text(input, secrets),
        )
        .into_bytes(),
        2 => format!(
            r#"{{"error":{{"code":"{}","message":"{}","correlationId":"{}"}}}}"#,
            service_text(input, secrets),
            service_text(input, secrets),
            service_text(input, secrets),
        )
        .into_bytes(),
        _ => input.chunk().to_vec(),
    };
    let answer = HttpResponse {
        status,
        headers,
        body,
    };
    (Ok(answer), delay)
}
