// Over 350 lines on purpose: one scenario per cache rule (key, margin, size, single flight).
//! The token cache ([`crate::proto::cache`]) seen through whole `get_token` runs.

use serde_json::json;

use super::harness::{Scenario, T0, T0_SECS, TOKEN, json, token_expiring_at, transport};
use crate::proto::cache::MAX_ENTRIES;
use crate::proto::token::EXPIRY_MARGIN_SECS;
use crate::proto::{
    Cached, ErrorKind, IdentitySelector, Source, Start, TransportErrorKind, UnixMillis,
};

const CLIENT: &str = "5e29463d-71da-4fe0-8e69-999b57db23b0";
const EXPIRES_ON: u64 = T0_SECS + 3600;

fn token_with(value: &str, expires_on: u64) -> super::harness::Scripted {
    json(
        200,
        json!({"access_token": value, "expires_on": expires_on.to_string(), "token_type": "Bearer"}),
    )
}

#[test]
fn second_call_for_the_same_key_sends_nothing() {
    let mut s = Scenario::imds().reply(token_expiring_at(EXPIRES_ON));
    let first = s.run();
    assert_eq!(first.requests.len(), 1);
    s.advance(60_000);
    let second = s.run();
    second.assert_nothing_sent();
    assert_eq!(second.token(), first.token());
    assert_eq!(s.identity().cached_tokens(), 1);
}

#[test]
fn scope_with_and_without_default_suffix_share_an_entry() {
    let mut s = Scenario::imds()
        .scope("https://vault.azure.net/.default")
        .reply(token_expiring_at(EXPIRES_ON));
    s.run().token();
    s.set_scope("https://vault.azure.net");
    s.run().assert_nothing_sent();
}

#[test]
fn start_serves_a_token_the_cache_already_holds() {
    let mut s = Scenario::imds().reply(token_with("first", EXPIRES_ON));
    s.run().token();
    match s.start() {
        Ok(Start::Cached(token)) => assert_eq!(token.secret(), "first"),
        other => panic!("expected the cached token, got {other:?}"),
    }
}

#[test]
fn different_selector_value_misses() {
    let mut s = Scenario::imds()
        .selector(IdentitySelector::ClientId(CLIENT.into()))
        .reply(token_with("a", EXPIRES_ON));
    s.run().token();
    s.set_selector(IdentitySelector::ClientId(
        "11111111-2222-4333-8444-555555555555".into(),
    ));
    s.push(token_with("b", EXPIRES_ON));
    assert_eq!(s.run().token().secret(), "b");
    // Client ids are not case-normalized: a differently-cased id is another entry.
    s.set_selector(IdentitySelector::ClientId(CLIENT.to_ascii_uppercase()));
    s.push(token_with("c", EXPIRES_ON));
    assert_eq!(s.run().token().secret(), "c");
    assert_eq!(s.identity().cached_tokens(), 3);
    s.set_selector(IdentitySelector::ClientId(CLIENT.into()));
    assert_eq!(s.run().token().secret(), "a");
}

#[test]
fn different_selector_kind_with_the_same_value_misses() {
    let mut s = Scenario::imds()
        .selector(IdentitySelector::ClientId(CLIENT.into()))
        .reply(token_with("by-client-id", EXPIRES_ON));
    s.run().token();
    s.set_selector(IdentitySelector::ObjectId(CLIENT.into()));
    s.push(token_with("by-object-id", EXPIRES_ON));
    let run = s.run();
    assert_eq!(run.token().secret(), "by-object-id");
    assert!(run.request().path_and_query.contains("&object_id="));
    s.set_selector(IdentitySelector::SystemAssigned);
    s.push(token_with("system", EXPIRES_ON));
    assert_eq!(s.run().token().secret(), "system");
    assert_eq!(s.identity().cached_tokens(), 3);
}

#[test]
fn different_resource_misses() {
    let mut s = Scenario::imds()
        .scope("https://management.azure.com/.default")
        .reply(token_with("no-slash", EXPIRES_ON));
    s.run().token();
    for (scope, value) in [
        ("https://management.azure.com//.default", "slash"),
        ("https://vault.azure.net/.default", "vault"),
    ] {
        s.set_scope(scope);
        s.push(token_with(value, EXPIRES_ON));
        assert_eq!(s.run().token().secret(), value, "{scope}");
    }
    s.set_scope("https://management.azure.com/.default");
    assert_eq!(s.run().token().secret(), "no-slash");
}

#[test]
fn token_is_served_until_exactly_five_minutes_before_expiry_then_refetched() {
    let mut s = Scenario::imds().reply(token_with("old", EXPIRES_ON));
    s.run().token();
    let margin_start = UnixMillis::from_secs(EXPIRES_ON - EXPIRY_MARGIN_SECS);
    s.advance_to(UnixMillis(margin_start.0 - 1));
    let last_hit = s.run();
    last_hit.assert_nothing_sent();
    assert_eq!(last_hit.token().secret(), "old");

    s.advance_to(margin_start);
    s.push(token_with("new", EXPIRES_ON + 3600));
    let refetch = s.run();
    assert_eq!(refetch.requests.len(), 1);
    assert_eq!(refetch.token().secret(), "new");
    // The refreshed token replaced the old entry.
    assert_eq!(s.identity().cached_tokens(), 1);
    s.advance(1);
    assert_eq!(s.run().token().secret(), "new");
}

#[test]
fn expired_token_is_never_returned() {
    let mut s = Scenario::imds().reply(token_with("old", EXPIRES_ON));
    s.run().token();
    s.advance_to(UnixMillis::from_secs(EXPIRES_ON + 1));
    // Every attempt times out (IMDS retries 6 times): the error, not the old token.
    s.push_times(transport(TransportErrorKind::Timeout, "simulated"), 7);
    let run = s.run();
    assert_eq!(run.requests.len(), 7);
    assert_eq!(run.error().kind(), ErrorKind::Transport);
}

#[track_caller]
fn refresh_on(body: serde_json::Value, takes_ms: u64) -> (u64, u64) {
    let (expires, refresh, _) = timing(body, takes_ms);
    (expires, refresh)
}

/// `(expires_on, refresh_on, usable_until)` of the token `body` carries.
#[track_caller]
fn timing(body: serde_json::Value, takes_ms: u64) -> (u64, u64, u64) {
    let mut s = Scenario::imds().reply(json(200, body).taking(takes_ms));
    let run = s.run();
    let token = run.token();
    (token.expires_on(), token.refresh_on(), token.usable_until())
}

#[test]
fn refresh_in_from_the_server_is_honoured() {
    let (_, refresh) = refresh_on(
        json!({"access_token": TOKEN, "expires_in": 86_399, "refresh_in": 1_800}),
        0,
    );
    assert_eq!(refresh, T0_SECS + 1_800);
    // Counted from when the response arrived.
    let (_, refresh) = refresh_on(
        json!({"access_token": TOKEN, "expires_in": "86399", "refresh_in": "1800"}),
        7_000,
    );
    assert_eq!(refresh, T0_SECS + 7 + 1_800);
    // Never after the token stops being served (a 10-minute token: its last quarter).
    let (expires, refresh, usable) = timing(
        json!({"access_token": TOKEN, "expires_in": 600, "refresh_in": 9_999}),
        0,
    );
    assert_eq!(
        (expires, refresh, usable),
        (T0_SECS + 600, T0_SECS + 450, T0_SECS + 450)
    );
    // Earlier than the computed point is honoured too.
    let (_, refresh) = refresh_on(
        json!({"access_token": TOKEN, "expires_in": 3_600, "refresh_in": 60}),
        0,
    );
    assert_eq!(refresh, T0_SECS + 60);
}

#[test]
fn lifetimes_of_two_hours_or_more_refresh_at_half_life() {
    for (lifetime, half) in [
        (7_200, 3_600),
        (7_201, 3_600),
        (86_399, 43_199),
        (86_400, 43_200),
    ] {
        let (expires, refresh) =
            refresh_on(json!({"access_token": TOKEN, "expires_in": lifetime}), 0);
        assert_eq!(expires, T0_SECS + lifetime);
        assert_eq!(refresh, T0_SECS + half, "lifetime {lifetime}");
    }
    // Half-life is measured from arrival, with expires_on as the end.
    let (_, refresh) = refresh_on(
        json!({"access_token": TOKEN, "expires_on": (T0_SECS + 10 + 7_200).to_string()}),
        10_000,
    );
    assert_eq!(refresh, T0_SECS + 10 + 3_600);
}

#[test]
fn lifetimes_from_ten_minutes_to_two_hours_refresh_five_minutes_before_expiry() {
    for lifetime in [7_199, 3_600, 1_200, 1_199, 600] {
        let (expires, refresh) =
            refresh_on(json!({"access_token": TOKEN, "expires_in": lifetime}), 0);
        assert_eq!(refresh, expires - 300, "lifetime {lifetime}");
    }
}

#[test]
fn lifetimes_under_ten_minutes_refresh_at_half_life() {
    // Five minutes before expiry would be before (or at) arrival: half-life instead.
    for (lifetime, half) in [
        (599, 299),
        (301, 150),
        (300, 150),
        (120, 60),
        (60, 30),
        (1, 0),
    ] {
        let (_, refresh) = refresh_on(json!({"access_token": TOKEN, "expires_in": lifetime}), 0);
        assert_eq!(refresh, T0_SECS + half, "lifetime {lifetime}");
    }
}

#[test]
fn tokens_are_served_until_five_minutes_before_expiry_or_their_last_quarter() {
    // expires_on − min(5 min, lifetime / 4): tokens under 20 minutes keep their last quarter.
    for (lifetime, kept_back) in [
        (86_400, 300),
        (3_600, 300),
        (1_200, 300),
        (1_199, 299),
        (600, 150),
        (60, 15),
        (3, 0),
    ] {
        let (expires, refresh, usable) =
            timing(json!({"access_token": TOKEN, "expires_in": lifetime}), 0);
        assert_eq!(usable, expires - kept_back, "lifetime {lifetime}");
        assert!(refresh <= usable, "lifetime {lifetime}");
    }
}

#[test]
fn failed_fetch_does_not_poison_the_cache() {
    let mut s = Scenario::imds()
        .scope("https://vault.azure.net/.default")
        .reply(token_with("vault", EXPIRES_ON));
    s.run().token();

    // A failure for another resource caches nothing and leaves the good entry alone.
    s.set_scope("https://storage.azure.com/.default");
    s.push_times(json(500, json!({"error": "server_error"})), 7);
    assert_eq!(s.run().error().kind(), ErrorKind::Service);
    assert_eq!(s.identity().cached_tokens(), 1);

    // The next call for the failed resource tries again and succeeds.
    s.push(token_with("storage", EXPIRES_ON));
    assert_eq!(s.run().token().secret(), "storage");
    s.run().assert_nothing_sent();

    s.set_scope("https://vault.azure.net/.default");
    let run = s.run();
    run.assert_nothing_sent();
    assert_eq!(run.token().secret(), "vault");
}

#[test]
fn invalid_response_does_not_poison_the_cache() {
    let mut s = Scenario::imds().reply(json(200, json!({"access_token": TOKEN})));
    assert_eq!(s.run().error().kind(), ErrorKind::InvalidResponse);
    assert_eq!(s.identity().cached_tokens(), 0);
    s.push(token_with("good", EXPIRES_ON));
    assert_eq!(s.run().token().secret(), "good");
}

fn scope(i: usize) -> String {
    format!("https://resource-{i}.example/.default")
}

#[test]
fn cache_is_bounded_at_max_entries_and_evicts_the_least_recently_used() {
    let mut s = Scenario::imds();
    // Stored one second apart, so "least recently used" and "first stored" are told apart by
    // the clock, not by the order of the entries.
    for i in 0..MAX_ENTRIES {
        s.set_scope(&scope(i));
        s.push(token_with(&format!("t{i}"), EXPIRES_ON));
        s.run().token();
        assert_eq!(s.identity().cached_tokens(), i + 1);
        s.advance(1_000);
    }
    // The first stored is used again: the second stored is now the least recently used.
    s.set_scope(&scope(0));
    s.run().assert_nothing_sent();
    s.advance(1_000);
    s.set_scope(&scope(MAX_ENTRIES));
    s.push(token_with("newest", EXPIRES_ON));
    s.run().token();
    assert_eq!(s.identity().cached_tokens(), MAX_ENTRIES);
    // Kept: the entry used again (first in, so FIFO would have dropped it), the newest, the
    // third stored. Dropped: the second stored.
    for i in [0, MAX_ENTRIES, 2] {
        s.set_scope(&scope(i));
        s.run().assert_nothing_sent();
    }
    s.set_scope(&scope(1));
    s.push(token_with("t1-again", EXPIRES_ON));
    assert_eq!(s.run().requests.len(), 1);
    assert_eq!(s.identity().cached_tokens(), MAX_ENTRIES);
}

#[test]
fn full_cache_evicts_stale_entries_before_fresh_ones() {
    let mut s = Scenario::imds();
    // Entry 5 lives for 10 minutes, all others for an hour.
    for i in 0..MAX_ENTRIES {
        s.set_scope(&scope(i));
        let expires_on = if i == 5 { T0_SECS + 600 } else { EXPIRES_ON };
        s.push(token_with(&format!("t{i}"), expires_on));
        s.run().token();
    }
    // Past entry 5's usability (a 10-minute token keeps its last quarter, 150 s): inserting
    // one more drops it, not entry 0.
    s.advance_to(UnixMillis::from_secs(T0_SECS + 600 - 150));
    s.set_scope(&scope(MAX_ENTRIES));
    s.push(token_with("new", EXPIRES_ON));
    s.run().token();
    assert_eq!(s.identity().cached_tokens(), MAX_ENTRIES);
    s.set_scope(&scope(0));
    s.run().assert_nothing_sent();
    s.set_scope(&scope(5));
    s.push(token_with("t5-again", EXPIRES_ON));
    assert_eq!(s.run().requests.len(), 1);
}

#[test]
fn cache_entries_carry_the_source_that_issued_them() {
    let mut s = Scenario::app_service().reply(token_expiring_at(EXPIRES_ON));
    assert_eq!(s.run().token().source(), Source::AppService);
    let cached = s.run();
    cached.assert_nothing_sent();
    assert_eq!(cached.token().source(), Source::AppService);
    assert_eq!(cached.finished_at, T0);
}

// ---------------------------------------------------------------------------------------
// Single flight: one upstream request per key at a time, as MSAL Go does. The
// acquisitions are stepped by hand and left in flight on purpose.

/// Feeds `reply` to a started fetch and completes it at `now`.
fn finish(
    s: &mut Scenario,
    mut acquisition: crate::proto::Acquisition,
    reply: super::harness::Scripted,
) -> Result<crate::proto::AccessToken, crate::proto::Error> {
    let now = s.now();
    let Some(crate::proto::Action::Send(_)) = acquisition.poll_action(now) else {
        panic!("expected a request");
    };
    acquisition.handle_response(now, reply.into_response());
    let outcome = acquisition.poll_outcome().expect("an outcome");
    s.identity().finish(now, outcome)
}

#[track_caller]
fn assert_wait(start: Result<Start, crate::proto::Error>) {
    match start {
        Ok(Start::Wait) => {}
        other => panic!("expected Start::Wait, got {other:?}"),
    }
}

#[test]
fn second_start_for_a_key_in_flight_waits_until_complete() {
    let mut s = Scenario::imds();
    let first = s.start_fetch();
    assert_wait(s.start());
    assert_wait(s.start_with(&super::harness::Call {
        force_refresh: true,
        ..Default::default()
    }));
    // Another key is independent.
    s.set_scope("https://vault.azure.net/.default");
    let other = s.start_fetch();
    s.identity().abandon(&other);
    s.set_scope("https://management.azure.com/.default");
    assert_wait(s.start());

    let token = finish(&mut s, first, token_with("one", EXPIRES_ON)).expect("token");
    assert_eq!(token.secret(), "one");
    match s.start() {
        Ok(Start::Cached(token)) => assert_eq!(token.secret(), "one"),
        other => panic!("expected the cached token, got {other:?}"),
    }
}

#[test]
fn abandoned_or_failed_fetch_releases_its_key() {
    let mut s = Scenario::imds();
    let first = s.start_fetch();
    assert_wait(s.start());
    s.identity().abandon(&first);
    let second = s.start_fetch();
    assert_wait(s.start());
    let e = finish(
        &mut s,
        second,
        json(400, json!({"error": "invalid_request"})),
    )
    .expect_err("error");
    assert_eq!(e.status(), Some(400));
    let _third = s.start_fetch();
}

#[test]
fn during_a_refresh_other_callers_get_the_still_usable_token() {
    let mut s = Scenario::imds().reply(token_with("old", T0_SECS + 86_400));
    s.run().token();
    s.advance_to(UnixMillis::from_secs(T0_SECS + 43_200));
    // The refresh is due: the first caller refreshes...
    let now = s.now();
    assert!(
        matches!(
            s.identity()
                .cached(
                    now,
                    "https://management.azure.com/.default",
                    &IdentitySelector::SystemAssigned
                )
                .expect("valid"),
            Cached::RefreshDue(token) if token.secret() == "old"
        ),
        "refresh due: the cache path serves the token and sends the caller to start"
    );
    let refresh = s.start_fetch();
    // ...the others get the old token from both paths, without a request.
    match s.start() {
        Ok(Start::Cached(token)) => assert_eq!(token.secret(), "old"),
        other => panic!("expected the cached token, got {other:?}"),
    }
    let now = s.now();
    let cached = s
        .identity()
        .cached(
            now,
            "https://management.azure.com/.default",
            &IdentitySelector::SystemAssigned,
        )
        .expect("valid");
    assert!(
        matches!(cached, Cached::Fresh(token) if token.secret() == "old"),
        "single flight: {cached:?}"
    );
    // The refresh lands: everyone gets the new token.
    let token = finish(&mut s, refresh, token_with("new", T0_SECS + 2 * 86_400)).expect("token");
    assert_eq!(token.secret(), "new");
    let run = s.run();
    run.assert_nothing_sent();
    assert_eq!(run.token().secret(), "new");
}

#[test]
fn abandoned_refresh_lets_the_next_caller_refresh() {
    let mut s = Scenario::imds().reply(token_with("old", T0_SECS + 86_400));
    s.run().token();
    s.advance_to(UnixMillis::from_secs(T0_SECS + 43_200));
    let refresh = s.start_fetch();
    s.identity().abandon(&refresh);
    let _again = s.start_fetch();
}
