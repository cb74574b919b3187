//! How a failed token request is reported as JSON, in one place for every front end: the
//! `azmi` CLI prints it, the Envoy filter logs it (its clients get only the class, the source
//! and a request id: `proxy_wasm::verdict::LocalReply::for_failure`).
//!
//! The object is `{"error": class, "message": …}` plus `source`, `status`, `code` and
//! `correlation_id` when they are known. The class is one of [`CREDENTIAL_UNAVAILABLE`],
//! [`AUTHENTICATION_FAILED`] or [`INVALID_ARGUMENT`].

use crate::proto::{Error, ErrorClass};

/// The class of an error a caller should answer by trying the next credential.
pub const CREDENTIAL_UNAVAILABLE: &str = "credential_unavailable";
/// The class of an error from a managed identity that is present and failed.
pub const AUTHENTICATION_FAILED: &str = "authentication_failed";
/// The class of an error in the caller's arguments.
pub const INVALID_ARGUMENT: &str = "invalid_argument";

/// The machine name of `class`, as it appears in the `error` field.
pub fn class_name(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::CredentialUnavailable => CREDENTIAL_UNAVAILABLE,
        ErrorClass::AuthenticationFailed => AUTHENTICATION_FAILED,
        ErrorClass::InvalidArgument => INVALID_ARGUMENT,
    }
}

/// The fields of one error report, borrowed from whatever error type holds them.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorReport<'a> {
    /// `credential_unavailable`, `authentication_failed` or `invalid_argument`.
    pub class: &'a str,
    /// The actionable message.
    pub message: &'a str,
    /// The managed-identity source's machine name (`imds`, `app_service`, …), when detected.
    pub source: Option<&'a str>,
    /// The HTTP status, when the source answered.
    pub status: Option<u16>,
    /// The service's error code, when it gave one.
    pub code: Option<&'a str>,
    /// The service's correlation id, when it gave one.
    pub correlation_id: Option<&'a str>,
}

impl<'a> ErrorReport<'a> {
    /// The report for a core error.
    pub fn from_error(error: &'a Error) -> Self {
        Self {
            class: class_name(error.class()),
            message: error.message(),
            source: error.mi_source().map(|s| s.id()),
            status: error.status(),
            code: error.code(),
            correlation_id: error.correlation_id(),
        }
    }

    /// The JSON object, on one line; the optional fields are left out when unknown. Keys come
    /// out in serde_json's map order (sorted, as the CLI and the filter have always printed).
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("error".into(), self.class.into());
        map.insert("message".into(), self.message.into());
        if let Some(source) = self.source {
            map.insert("source".into(), source.into());
        }
        if let Some(status) = self.status {
            map.insert("status".into(), status.into());
        }
        if let Some(code) = self.code {
            map.insert("code".into(), code.into());
        }
        if let Some(id) = self.correlation_id {
            map.insert("correlation_id".into(), id.into());
        }
        serde_json::Value::Object(map).to_string()
    }
}

impl<'a> From<&'a Error> for ErrorReport<'a> {
    fn from(error: &'a Error) -> Self {
        Self::from_error(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ErrorKind, Source};

    #[test]
    fn a_bare_argument_error_has_class_and_message_only() {
        let error = Error::invalid_argument("scope is empty");
        assert_eq!(
            ErrorReport::from(&error).to_json(),
            r#"{"error":"invalid_argument","message":"scope is empty"}"#
        );
    }

    #[test]
    fn a_service_error_carries_what_the_service_said() {
        let error = Error::new(
            ErrorKind::Configuration,
            Some(Source::Imds),
            "identity not found",
        )
        .with_service(
            Some(400),
            Some("invalid_request".into()),
            Some("c0ffee".into()),
        );
        let text = ErrorReport::from_error(&error).to_json();
        // serde_json's map keeps its keys sorted (no `preserve_order`): the order callers see.
        assert_eq!(
            text,
            r#"{"code":"invalid_request","correlation_id":"c0ffee","error":"authentication_failed","message":"identity not found","source":"imds","status":400}"#
        );
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "error": "authentication_failed",
                "message": "identity not found",
                "source": "imds",
                "status": 400,
                "code": "invalid_request",
                "correlation_id": "c0ffee",
            })
        );
    }

    #[test]
    fn every_class_has_its_name() {
        assert_eq!(
            class_name(ErrorClass::CredentialUnavailable),
            "credential_unavailable"
        );
        assert_eq!(
            class_name(ErrorClass::AuthenticationFailed),
            "authentication_failed"
        );
        assert_eq!(class_name(ErrorClass::InvalidArgument), "invalid_argument");
    }
}
