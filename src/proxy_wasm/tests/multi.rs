//! A scope per upstream (issue 13): the request's `:authority` picks the scope, each scope
//! has its own token and token request, an unmapped upstream is refused with the generic 503
//! or passed untouched, and a bad map refuses the configuration with one clear reason.

use super::{Calls, IMDS, T0, bearer, own_store, reply, token_response};
use crate::proto::EnvSnapshot;
use crate::proxy_wasm::config::FilterConfig;
use crate::proxy_wasm::filter::{Filter, stat_label};
use crate::proxy_wasm::token_root::{Level, Verdict};
use crate::proxy_wasm::verdict::REPLY_MESSAGE;

const VAULT: &str = "https://vault.azure.net/.default";
const STORAGE: &str = "https://storage.azure.com/.default";

fn filter_of(config: &str) -> Filter {
    Filter::new(
        FilterConfig::parse(config.as_bytes()).unwrap(),
        EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)]),
        T0,
    )
}

fn two_upstreams(extra: &str) -> Filter {
    filter_of(&format!(
        r#"{{"cluster": "imds", "upstreams": {{"vault.test": "{VAULT}", "storage.test:8443": "{STORAGE}"}}{extra}}}"#
    ))
}

#[test]
fn each_upstream_gets_its_own_scope_token_and_token_request() {
    let mut mem = own_store();
    let mut filter = two_upstreams("");
    assert!(filter.routes());
    assert_eq!(filter.roots().len(), 2);
    let mut calls = Calls::default();
    // The authority is lower-cased; host:port is looked up as given, then as host.
    let vault = filter.on_request(T0, 1, Some("vault.test:443"), &mut mem);
    let storage = filter.on_request(T0, 2, Some("storage.test:8443"), &mut mem);
    let vault_again = filter.on_request(T0, 3, Some("VAULT.test"), &mut mem);
    for step in [&vault, &storage, &vault_again] {
        assert_eq!(step.verdict, Verdict::Pause);
    }
    assert!(filter.is_waiting(1) && filter.is_waiting(2) && filter.is_waiting(3));
    assert!(filter.on_tick(T0, &mut calls, &mut mem).resume.is_empty());
    assert_eq!(calls.sent.len(), 2, "one token request per scope");
    let resource = |i: usize| {
        calls.sent[i]
            .path_and_query
            .split('&')
            .find_map(|p| p.strip_prefix("resource="))
            .unwrap()
            .to_string()
    };
    let mut resources = [resource(0), resource(1)];
    resources.sort();
    assert_eq!(
        resources,
        [
            "https%3A%2F%2Fstorage.azure.com",
            "https%3A%2F%2Fvault.azure.net"
        ]
    );
    // Call ids are 1-based positions in `sent`.
    let call_for = |resource_host: &str| {
        let i = (0..2)
            .find(|i| resource(*i).contains(resource_host))
            .unwrap();
        u32::try_from(i + 1).unwrap()
    };
    let (vault_call, storage_call) = (call_for("vault"), call_for("storage"));
    // Answers out of order: each goes to the scope that sent it.
    let storage_done = filter.on_response(
        T0,
        storage_call,
        Ok(token_response("storage-tok", T0, 3_600)),
        &mut calls,
        &mut mem,
    );
    assert_eq!(storage_done.resume.len(), 1);
    assert_eq!(storage_done.resume[0].0, 2);
    assert_eq!(bearer(&storage_done.resume[0].1), "Bearer storage-tok");
    assert_eq!(storage_done.token_requests, 0);
    let vault_done = filter.on_response(
        T0,
        vault_call,
        Ok(token_response("vault-tok", T0, 3_600)),
        &mut calls,
        &mut mem,
    );
    let ids: Vec<u32> = vault_done.resume.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 3]);
    assert_eq!(bearer(&vault_done.resume[1].1), "Bearer vault-tok");
    assert!(
        filter
            .on_response(T0, 9, Ok(token_response("x", T0, 60)), &mut calls, &mut mem)
            .resume
            .is_empty(),
        "an unknown call id is nobody's"
    );
    // Cached per scope from now on.
    let later = T0.plus_millis(1_000);
    let vault = filter.on_request(later, 4, Some("vault.test"), &mut mem);
    let storage = filter.on_request(later, 5, Some("storage.test:8443"), &mut mem);
    assert_eq!(bearer(&vault.verdict), "Bearer vault-tok");
    assert_eq!(bearer(&storage.verdict), "Bearer storage-tok");
    assert_eq!(calls.sent.len(), 2);
    let expiries: Vec<Option<u64>> = filter.expiries(later).collect();
    assert_eq!(expiries, [Some(3_599), Some(3_599)]);
    assert_eq!(filter.next_tick_ms(later), None);
}

#[test]
fn an_unmapped_upstream_gets_the_generic_503_once_logged_or_passes_untouched() {
    let mut mem = own_store();
    let mut filter = two_upstreams("");
    let first = filter.on_request(T0, 1, Some("other.test"), &mut mem);
    let body = reply(&first.verdict);
    assert_eq!(body["error"], "invalid_argument");
    assert_eq!(body["message"], REPLY_MESSAGE);
    assert!(!body.to_string().contains("other.test"), "{body}");
    let (level, line) = first.log.expect("the first refusal is logged");
    assert_eq!(level, Level::Warn);
    assert!(line.contains(r#"\"other.test\""#), "{line}");
    assert!(
        line.contains(body["request_id"].as_str().unwrap()),
        "{line}"
    );
    let again = filter.on_request(T0, 2, Some("other.test"), &mut mem);
    assert_eq!(reply(&again.verdict)["request_id"], body["request_id"]);
    assert!(again.log.is_none(), "one line per authority");
    let startup = filter.startup_log();
    assert!(
        startup.iter().any(
            |(_, l)| l.contains("vault.test -> https://vault.azure.net/.default")
                && l.contains(body["request_id"].as_str().unwrap())
        ),
        "{startup:?}"
    );

    let mut passing = two_upstreams(r#", "unmapped": "pass""#);
    let step = passing.on_request(T0, 1, Some("other.test"), &mut mem);
    assert_eq!(step.verdict, Verdict::PassThrough);
    let (level, line) = step.log.unwrap();
    assert_eq!(level, Level::Info, "passing is configured, not a problem");
    assert!(line.contains("pass untouched"), "{line}");

    // A default scope takes every other upstream.
    let mut defaulted = filter_of(&format!(
        r#"{{"cluster": "imds", "scope": "{STORAGE}", "upstreams": {{"vault.test": "{VAULT}"}}}}"#
    ));
    assert_eq!(defaulted.roots().len(), 2);
    assert_eq!(defaulted.config().scope_for("other.test"), Some(STORAGE));
    assert_eq!(defaulted.config().scope_for("vault.test:80"), Some(VAULT));
    let step = defaulted.on_request(T0, 1, Some("other.test"), &mut mem);
    assert_eq!(step.verdict, Verdict::Pause);
}

#[test]
fn the_single_scope_configuration_still_works_without_reading_the_authority() {
    let mut mem = own_store();
    let mut filter = filter_of(&format!(r#"{{"cluster": "imds", "scope": "{VAULT}"}}"#));
    assert!(!filter.routes(), "no :authority lookup");
    assert_eq!(filter.roots().len(), 1);
    let step = filter.on_request(T0, 1, None, &mut mem);
    assert_eq!(step.verdict, Verdict::Pause);
    assert_eq!(filter.startup_log().len(), 1);
    assert_eq!(stat_label(VAULT), "vault_azure_net");
    assert_eq!(stat_label("api://my-app/.default"), "my_app");
}

#[test]
fn a_bad_upstream_map_is_refused_with_one_clear_reason() {
    for (json, expected) in [
        (
            r#"{"cluster": "c", "upstreams": {}}"#,
            "\"upstreams\" is empty",
        ),
        (
            r#"{"cluster": "c", "upstreams": {"v.test": "a b"}}"#,
            "maps \"v.test\" to a bad scope",
        ),
        (
            r#"{"cluster": "c", "upstreams": {"v.test": ""}}"#,
            "bad scope",
        ),
        (
            r#"{"cluster": "c", "upstreams": {"V.test": "https://vault.azure.net/.default"}}"#,
            "not a lower-case authority",
        ),
        (
            r#"{"cluster": "c", "upstreams": {"v test": "https://vault.azure.net/.default"}}"#,
            "not a lower-case authority",
        ),
        (
            r#"{"cluster": "c", "upstreams": {"v.test": "https://vault.azure.net/.default"}, "upstream": 1}"#,
            "unknown field `upstream`",
        ),
        (
            r#"{"cluster": "c", "scope": "s", "upstreams": {"v.test": "s"}, "unmapped": "pass"}"#,
            "keep one",
        ),
        (
            r#"{"cluster": "c", "scope": "s", "unmapped": "deny"}"#,
            "needs \"upstreams\"",
        ),
        (
            r#"{"cluster": "c", "upstreams": {"v.test": "s"}, "unmapped": "drop"}"#,
            "unknown variant `drop`",
        ),
        (
            r#"{"cluster": "c", "scope": "s", "log_level": "debug"}"#,
            "unknown variant `debug`",
        ),
    ] {
        let error = FilterConfig::parse(json.as_bytes()).unwrap_err();
        assert!(
            error.message().contains(expected),
            "{json}: {}",
            error.message()
        );
        assert!(
            !error.message().contains('\n'),
            "one line: {}",
            error.message()
        );
    }
}
