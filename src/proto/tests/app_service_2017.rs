//! Legacy App Service 2017-09-01: `secret` header, `clientid`, no `Metadata`, and its
//! date-string expiry formats (Linux and Windows, see [`crate::proto::expiry`]).

use serde_json::json;

use super::harness::{
    Expect, Run, SECRET, Scenario, T0_SECS, TOKEN, assert_request, json, token_expiring_at,
};
use crate::proto::{ErrorClass, ErrorKind, IdentitySelector, Method, Scheme, Source, UnixMillis};

const AUTHORITY: &str = "127.0.0.1:46808";
const PATH: &str = "/MSI/auth";
const CLIENT: &str = "5E29463D-71DA-4FE0-8E69-999B57DB23B0";

/// 2019-06-20T02:57:58Z, the Linux sample `06/20/2019 02:57:58 +00:00`.
const LINUX_EXPIRY: u64 = 1_560_999_478;
/// 2020-01-16T17:24:12Z: `1/16/2020 5:24:12 PM +00:00`, the Windows 12-hour form.
const WINDOWS_PM_EXPIRY: u64 = 1_579_195_452;

fn request_2017<'a>(query: &'a [(&'a str, &'a str)]) -> Expect<'a> {
    Expect {
        method: Method::Get,
        scheme: Scheme::Http,
        authority: AUTHORITY,
        path: PATH,
        query,
        // No Metadata header for the 2017 API (only Azure ML sends it, as msal-node does).
        headers: &[("secret", SECRET)],
    }
}

#[test]
fn system_assigned_request_has_the_secret_header_and_no_clientid() {
    let run = Scenario::app_service_2017()
        .reply(token_expiring_at(T0_SECS + 3600))
        .run();
    let request = run.request();
    assert_request(
        request,
        &request_2017(&[
            ("api-version", "2017-09-01"),
            ("resource", "https://management.azure.com"),
        ]),
    );
    assert_eq!(
        request.path_and_query,
        "/MSI/auth?api-version=2017-09-01&resource=https%3A%2F%2Fmanagement.azure.com"
    );
    assert!(
        request.headers[0].sensitive,
        "the secret header is sensitive"
    );
    assert_eq!(run.token().source(), Source::AppService2017);
}

#[test]
fn client_id_selector_is_sent_as_clientid_without_underscore() {
    let run = Scenario::app_service_2017()
        .selector(IdentitySelector::ClientId(CLIENT.into()))
        .reply(token_expiring_at(T0_SECS + 3600))
        .run();
    assert_request(
        run.request(),
        &request_2017(&[
            ("api-version", "2017-09-01"),
            ("resource", "https://management.azure.com"),
            ("clientid", CLIENT),
        ]),
    );
}

#[test]
fn object_and_resource_ids_are_refused_where_msal_python_sends_them_to_be_ignored() {
    for selector in [
        IdentitySelector::ObjectId(CLIENT.into()),
        IdentitySelector::ResourceId("/subscriptions/x/providers/y/id".into()),
    ] {
        let run = Scenario::app_service_2017()
            .selector(selector.clone())
            .run();
        run.assert_untouched();
        let e = run.error();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.mi_source(), Some(Source::AppService2017));
        assert_eq!(
            e.message(),
            format!(
                "App Service (2017-09-01) cannot use {}: this source selects user-assigned identities by client id only; pass the identity's client id",
                selector.kind().describe()
            )
        );
    }
}

/// A 2017 token response whose `expires_on` is `expires_on`, received at `now`.
fn dated_token(now: UnixMillis, expires_on: &str) -> Run {
    Scenario::app_service_2017()
        .at(now)
        .reply(json(
            200,
            json!({
                "access_token": TOKEN,
                "expires_on": expires_on,
                "resource": "https://management.azure.com/",
                "token_type": "Bearer",
            }),
        ))
        .run()
}

#[test]
fn linux_date_expiry_is_parsed_where_two_sdks_report_such_tokens_as_already_expired() {
    // msal-node turns the date into NaN and reports the token as expired at issue (so every
    // call refetches); MSAL Go's layout has no offset. One hour before expiry:
    let now = UnixMillis::from_secs(LINUX_EXPIRY - 3600);
    let mut s = Scenario::app_service_2017().at(now).reply(json(
        200,
        json!({"access_token": TOKEN, "expires_on": "06/20/2019 02:57:58 +00:00", "token_type": "Bearer"}),
    ));
    let token = s.run().token().clone();
    assert_eq!(token.expires_on(), LINUX_EXPIRY);
    assert_eq!(token.refresh_on(), LINUX_EXPIRY - 300);
    // Still fresh ten minutes later: served from the cache, not refetched.
    s.advance(10 * 60 * 1000);
    let again = s.run();
    again.assert_nothing_sent();
    assert_eq!(again.token(), &token);
}

#[test]
fn windows_twelve_hour_pm_expiry_is_parsed_as_afternoon() {
    // Read as 5 AM, this token would have expired eleven hours before it arrived.
    let now = UnixMillis::from_secs(WINDOWS_PM_EXPIRY - 3600);
    let run = dated_token(now, "1/16/2020 5:24:12 PM +00:00");
    assert_eq!(run.token().expires_on(), WINDOWS_PM_EXPIRY);
}

#[test]
fn windows_twelve_hour_am_expiry_is_parsed_as_morning() {
    let am = WINDOWS_PM_EXPIRY - 12 * 3600;
    let run = dated_token(
        UnixMillis::from_secs(am - 60),
        "1/16/2020 5:24:12 AM +00:00",
    );
    assert_eq!(run.token().expires_on(), am);
}

#[test]
fn day_first_date_is_an_invalid_response_not_a_guess() {
    let run = dated_token(
        UnixMillis::from_secs(LINUX_EXPIRY - 3600),
        "20/06/2019 02:57:58 +00:00",
    );
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    assert_eq!(
        e.message(),
        "App Service (2017-09-01): the token response is unusable: its expiry is unknown (expires_on=\"20/06/2019 02:57:58 +00:00\", expires_in=absent); this is a platform fault, retry later or report it with the response status"
    );
}

#[test]
fn rejected_secret_is_configuration_naming_the_msi_variables() {
    let run = Scenario::app_service_2017()
        .reply(json(
            401,
            json!({"error": "unauthorized", "error_description": "bad secret"}),
        ))
        .run();
    let e = run.error();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert_eq!(e.class(), ErrorClass::AuthenticationFailed);
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.code(), Some("unauthorized"));
    assert_eq!(
        e.message(),
        "App Service (2017-09-01): the endpoint rejected the secret from MSI_ENDPOINT and MSI_SECRET (401 unauthorized: bad secret); restart the process so it gets the platform's current value"
    );
}
