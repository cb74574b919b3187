//! Scenario tests for the sans-IO core, one file per concern; [`harness`] is the scripted world
//! they run in.

mod harness;

mod app_service;
mod cache;
mod detect;
mod imds;
mod redaction;
mod scopes;
mod selectors;
