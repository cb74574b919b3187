//! Scope → resource ([`crate::proto::scope`]).

use super::harness::{Scenario, T0_SECS, query_pairs, token_expiring_at};
use crate::proto::scope::resource_from_scope;
use crate::proto::{ErrorClass, ErrorKind};

#[test]
fn default_suffix_is_stripped_only_as_a_suffix() {
    let cases = [
        (
            "https://vault.azure.net/.default",
            "https://vault.azure.net",
        ),
        (
            "https://management.azure.com//.default",
            "https://management.azure.com/",
        ),
        ("https://vault.azure.net", "https://vault.azure.net"),
        // No trailing-slash normalization: these are different resources.
        (
            "https://management.azure.com/",
            "https://management.azure.com/",
        ),
        // msal-node replaces the first `/.default` anywhere; only a suffix is cut here.
        (
            "https://example.com/.default/api",
            "https://example.com/.default/api",
        ),
        (
            "https://example.com/.default/.default",
            "https://example.com/.default",
        ),
        // Case-sensitive, like every SDK.
        (
            "https://vault.azure.net/.DEFAULT",
            "https://vault.azure.net/.DEFAULT",
        ),
        (
            "https://vault.azure.net.default",
            "https://vault.azure.net.default",
        ),
        (
            "api://5e29463d-71da-4fe0-8e69-999b57db23b0/.default",
            "api://5e29463d-71da-4fe0-8e69-999b57db23b0",
        ),
        (
            "5e29463d-71da-4fe0-8e69-999b57db23b0",
            "5e29463d-71da-4fe0-8e69-999b57db23b0",
        ),
    ];
    for (scope, resource) in cases {
        assert_eq!(resource_from_scope(scope), Ok(resource), "{scope}");
        let mut s = Scenario::imds()
            .scope(scope)
            .reply(token_expiring_at(T0_SECS + 3600));
        let run = s.run();
        assert_eq!(
            query_pairs(run.request())[1],
            ("resource".to_string(), resource.to_string()),
            "{scope}"
        );
    }
}

#[track_caller]
fn refused(scope: &str, message: &str) {
    let e = resource_from_scope(scope).expect_err(scope);
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{scope:?}");
    assert_eq!(e.class(), ErrorClass::InvalidArgument);
    assert_eq!(e.mi_source(), None);
    assert_eq!(e.message(), message, "{scope:?}");
    // Refused before detection: nothing is sent, whatever the environment.
    for mut s in [Scenario::imds(), Scenario::app_service()] {
        s = s.scope(scope);
        let run = s.run();
        run.assert_nothing_sent();
        assert_eq!(run.error(), &e);
    }
}

#[test]
fn empty_scope_has_its_own_message_not_multiple_scopes() {
    refused(
        "",
        "scope is empty; pass exactly one scope, e.g. https://vault.azure.net/.default",
    );
}

#[test]
fn default_suffix_alone_names_no_resource() {
    refused(
        "/.default",
        "scope \"/.default\" names no resource; pass e.g. https://vault.azure.net/.default",
    );
}

#[test]
fn multiple_scopes_and_whitespace_are_refused() {
    for scope in [
        "https://a.example/.default https://b.example/.default",
        " https://vault.azure.net/.default",
        "https://vault.azure.net/.default ",
        "https://vault.azure.net/\u{a0}.default",
        "https://vault.azure.net/\u{2028}.default",
        " ",
    ] {
        refused(
            scope,
            &format!(
                "scope \"{scope}\" contains whitespace; managed identity takes exactly one scope per request"
            ),
        );
    }
}

#[test]
fn control_characters_are_refused() {
    // Tab and newline are control characters too: refused without echoing the scope.
    for scope in [
        "https://vault.azure.net/.default\n",
        "https://a.example/.default\thttps://b.example",
        "https://a.example/.default\r\n https://b.example",
        "https://vault.azure.net/\u{0}.default",
        "https://vault.azure.net/\u{85}.default",
        "https://vault.azure.net/.default\u{7f}",
        "https://vault.azure.net/\u{1b}[31m.default",
    ] {
        refused(
            scope,
            "scope contains control characters; pass exactly one scope, e.g. https://vault.azure.net/.default",
        );
    }
}
