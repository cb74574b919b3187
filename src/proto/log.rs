//! Diagnostics levels: `AZURE_LOG_LEVEL`, the Azure SDKs' variable (`error`, `warning`,
//! `info`, `verbose`; any case; unset or anything else: silent, the default). What is logged
//! at each level is the drive loop's ([`crate::drive`]); nothing logged ever holds a token, a
//! secret, a key or an assertion — requests are named by method, scheme, authority and path
//! (no query, no headers, no body), and error messages are already redacted.

use super::env::EnvSnapshot;

/// The variable the SDKs read.
pub const AZURE_LOG_LEVEL: &str = "AZURE_LOG_LEVEL";

/// How much to log, least to most.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Failures the caller gets.
    Error,
    /// Retries and failed refreshes.
    Warning,
    /// Each request, its answer and time, retry waits, refreshes, which source answered.
    Info,
    /// Also every cache hit and miss.
    Verbose,
}

impl Level {
    /// The level `AZURE_LOG_LEVEL` names in `env`, if any.
    pub fn from_env(env: &EnvSnapshot) -> Option<Level> {
        match env
            .get(AZURE_LOG_LEVEL)?
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "error" => Some(Level::Error),
            "warning" => Some(Level::Warning),
            "info" => Some(Level::Info),
            "verbose" => Some(Level::Verbose),
            _ => None,
        }
    }

    /// The SDKs' name of the level.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Verbose => "verbose",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_values_in_any_case_and_nothing_else() {
        let level = |v: &str| Level::from_env(&EnvSnapshot::from_pairs([(AZURE_LOG_LEVEL, v)]));
        assert_eq!(level("info"), Some(Level::Info));
        assert_eq!(level(" VERBOSE "), Some(Level::Verbose));
        assert_eq!(level("Warning"), Some(Level::Warning));
        assert_eq!(level("error"), Some(Level::Error));
        assert_eq!(level("debug"), None);
        assert_eq!(level(""), None);
        assert_eq!(Level::from_env(&EnvSnapshot::default()), None);
        assert!(Level::Error < Level::Verbose);
    }
}
