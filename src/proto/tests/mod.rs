//! Scenario tests for the sans-IO core, one file per concern; [`harness`] is the scripted world
//! they run in.

mod harness;

mod app_service;
mod app_service_2017;
mod arc;
mod azure_ml;
mod cache;
mod chain;
mod cloud_shell;
mod deadlines;
mod detect;
mod driver;
mod fuzz_findings;
mod hardening;
mod imds;
mod leaks;
mod logging;
mod probe;
mod properties;
mod redaction;
mod refresh;
mod retry;
mod scopes;
mod selectors;
mod service_fabric;
mod shared_cache;
mod workload_identity;
