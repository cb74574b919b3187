//! The `authorization` value of a cached token is built once and shared by every request's
//! verdict, until the token changes.

use super::{Calls, T0, bearer, first_token, imds_root, own_store, token_response};
use crate::proxy_wasm::token_root::Verdict;

fn value(verdict: Verdict) -> crate::proxy_wasm::verdict::Bearer {
    match verdict {
        Verdict::Forward(bearer) => bearer,
        other => panic!("expected a token, got {other:?}"),
    }
}

#[test]
fn requests_share_one_header_value_per_token_and_a_new_token_gets_a_new_one() {
    let mut mem = own_store();
    let mut root = imds_root();
    let mut calls = Calls::default();
    first_token(&mut root, "first", 86_400, &mut calls, &mut mem);
    let a = value(root.on_request(T0, 2, &mut mem).verdict);
    let b = value(root.on_request(T0, 3, &mut mem).verdict);
    assert_eq!(a.secret(), "Bearer first");
    assert!(
        a.shares(&b),
        "the second request reuses the first one's value"
    );
    // At half-life the root refreshes; the new token gets its own value.
    let due = T0.plus_millis(43_201_000);
    assert_eq!(
        bearer(&root.on_request(due, 4, &mut mem).verdict),
        "Bearer first"
    );
    root.on_tick(due, &mut calls, &mut mem);
    root.on_response(
        due,
        2,
        Ok(token_response("second", due, 86_400)),
        &mut calls,
        &mut mem,
    );
    let c = value(root.on_request(due, 5, &mut mem).verdict);
    assert_eq!(c.secret(), "Bearer second");
    assert!(!c.shares(&a));
    let d = value(root.on_request(due, 6, &mut mem).verdict);
    assert!(d.shares(&c));
}
