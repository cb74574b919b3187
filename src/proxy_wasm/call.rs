//! What Envoy hands back for a `dispatch_http_call`, turned into the core's response or
//! transport error.
//!
//! Envoy reports a call that got no response at all with zero headers. But a connection
//! failure, an empty cluster or the call timeout usually arrive as a *response* that Envoy
//! made up itself (503 `upstream connect error …`, 503 `no healthy upstream`, 504
//! `upstream request timeout`). Those are transport failures, not answers of the
//! managed-identity endpoint: passing them on as a 503 "from IMDS" would hide that nothing
//! listens there.

use crate::proto::{HttpResponse, MAX_RESPONSE_BYTES, TransportError, TransportErrorKind};

/// Bodies of the replies Envoy's router makes up when no upstream answered (Envoy 1.x),
/// with the kind of failure each stands for.
const ENVOY_LOCAL_REPLIES: [(u16, &str, TransportErrorKind); 3] = [
    (
        503,
        "upstream connect error or disconnect/reset before headers",
        TransportErrorKind::ConnectionRefused,
    ),
    (
        503,
        "no healthy upstream",
        TransportErrorKind::ConnectionRefused,
    ),
    (504, "upstream request timeout", TransportErrorKind::Timeout),
];

/// The raw parts of a call's answer, as read from the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallAnswer {
    /// Response headers including `:status`; empty when the call failed outright.
    pub headers: Vec<(String, String)>,
    /// The body, read up to [`MAX_RESPONSE_BYTES`].
    pub body: Vec<u8>,
    /// The full body size Envoy reported.
    pub body_size: usize,
}

/// Classifies the answer to a call made through Envoy cluster `cluster`.
pub fn call_result(answer: CallAnswer, cluster: &str) -> Result<HttpResponse, TransportError> {
    if answer.headers.is_empty() {
        return Err(TransportError::new(
            TransportErrorKind::Other,
            format!(
                "Envoy cluster \"{cluster}\" gave no response (connection failure, reset or the call timeout)"
            ),
        ));
    }
    let status = answer
        .headers
        .iter()
        .find(|(name, _)| name == ":status")
        .and_then(|(_, value)| value.parse::<u16>().ok())
        .ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::Other,
                format!("Envoy cluster \"{cluster}\" answered without a valid :status"),
            )
        })?;
    if answer.body_size > MAX_RESPONSE_BYTES {
        return Err(TransportError::new(
            TransportErrorKind::ResponseTooLarge,
            format!("{} bytes", answer.body_size),
        ));
    }
    let from_upstream = answer
        .headers
        .iter()
        .any(|(name, _)| name == "x-envoy-upstream-service-time");
    if !from_upstream
        && let Some((_, prefix, kind)) = ENVOY_LOCAL_REPLIES
            .iter()
            .find(|(s, prefix, _)| *s == status && answer.body.starts_with(prefix.as_bytes()))
    {
        let text = String::from_utf8_lossy(&answer.body);
        let text = text.trim();
        let detail = if text.len() > 300 { prefix } else { text };
        return Err(TransportError::new(
            *kind,
            format!("through Envoy cluster \"{cluster}\": {detail}"),
        ));
    }
    Ok(HttpResponse {
        status,
        headers: answer
            .headers
            .into_iter()
            .filter(|(name, _)| !name.starts_with(':'))
            .collect(),
        body: answer.body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: &str, extra: &[(&str, &str)], body: &str) -> CallAnswer {
        let mut headers = vec![(":status".to_string(), status.to_string())];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        CallAnswer {
            headers,
            body: body.as_bytes().to_vec(),
            body_size: body.len(),
        }
    }

    #[test]
    fn an_upstream_answer_passes_through_without_pseudo_headers() {
        let response = call_result(
            answer("500", &[("content-type", "application/json")], "{}"),
            "imds",
        )
        .unwrap();
        assert_eq!(response.status, 500);
        assert_eq!(
            response.headers,
            vec![("content-type".into(), "application/json".into())]
        );
        assert_eq!(response.body, b"{}");
    }

    #[test]
    fn no_headers_is_no_response() {
        let error = call_result(CallAnswer::default(), "imds").unwrap_err();
        assert_eq!(error.kind, TransportErrorKind::Other);
        assert!(error.detail.contains("cluster \"imds\" gave no response"));
    }

    #[test]
    fn envoy_made_up_replies_are_transport_errors() {
        let refused = call_result(
            answer(
                "503",
                &[],
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            "imds",
        )
        .unwrap_err();
        assert_eq!(refused.kind, TransportErrorKind::ConnectionRefused);
        assert!(refused.detail.contains("reset reason: connection failure"));
        let timeout =
            call_result(answer("504", &[], "upstream request timeout"), "imds").unwrap_err();
        assert_eq!(timeout.kind, TransportErrorKind::Timeout);
        let empty = call_result(answer("503", &[], "no healthy upstream"), "imds").unwrap_err();
        assert_eq!(empty.kind, TransportErrorKind::ConnectionRefused);
    }

    #[test]
    fn the_same_text_from_the_upstream_itself_is_an_answer() {
        let response = call_result(
            answer(
                "503",
                &[("x-envoy-upstream-service-time", "3")],
                "no healthy upstream",
            ),
            "imds",
        )
        .unwrap();
        assert_eq!(response.status, 503);
    }

    #[test]
    fn oversize_bodies_and_missing_status_are_refused() {
        let mut big = answer("200", &[], "");
        big.body_size = MAX_RESPONSE_BYTES + 1;
        assert_eq!(
            call_result(big, "imds").unwrap_err().kind,
            TransportErrorKind::ResponseTooLarge
        );
        let no_status = CallAnswer {
            headers: vec![("content-type".into(), "x".into())],
            ..CallAnswer::default()
        };
        assert!(
            call_result(no_status, "imds")
                .unwrap_err()
                .detail
                .contains(":status")
        );
    }
}
