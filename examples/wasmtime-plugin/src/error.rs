//! The plugin's errors as a Rust enum: the three WIT classes, plus a trap.

use crate::bindings::{self, ErrorInfo};

/// Why [`crate::Plugin::get_token`] returned no token. `Display` starts with the class.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No usable managed identity here, or the detected source cannot honour the selector:
    /// a credential chain should try its next credential.
    #[error("credential unavailable: {}", .0.message)]
    CredentialUnavailable(ErrorInfo),
    /// A managed identity is present but refused or failed the request: stop and report
    /// (`status`, `code` and `correlation_id` in the [`ErrorInfo`] help support).
    #[error("authentication failed: {}", .0.message)]
    AuthenticationFailed(ErrorInfo),
    /// The scope or selector is malformed; nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The component trapped. The instance is unusable afterwards: load the plugin again.
    #[error("plugin trapped: {0:#}")]
    Trap(wasmtime::Error),
}

impl TokenError {
    /// The details the component reported, for the two classes that have them.
    pub fn info(&self) -> Option<&ErrorInfo> {
        match self {
            TokenError::CredentialUnavailable(info) | TokenError::AuthenticationFailed(info) => {
                Some(info)
            }
            TokenError::InvalidArgument(_) | TokenError::Trap(_) => None,
        }
    }
}

impl From<bindings::Error> for TokenError {
    fn from(error: bindings::Error) -> Self {
        match error {
            bindings::Error::CredentialUnavailable(info) => TokenError::CredentialUnavailable(info),
            bindings::Error::AuthenticationFailed(info) => TokenError::AuthenticationFailed(info),
            bindings::Error::InvalidArgument(message) => TokenError::InvalidArgument(message),
        }
    }
}
