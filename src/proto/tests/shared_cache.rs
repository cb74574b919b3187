//! The shared cache ([`crate::proto::shared`], [`crate::drive::get_token_shared`]): instances
//! that share a store fetch once, wait for each other, survive a dead leader, refuse bad
//! entries, and fall back to their own cache when the store fails.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::harness::{Scenario, T0, T0_SECS, json};
use crate::drive::{SharedStore, StoreError};
use crate::proto::{FOLLOW_POLL_MS, LEASE_MS, UnixMillis, decode_entry, encode_lease, lease_key};
use serde_json::json as j;

/// A value to write at a key after that many reads of it.
type Injection = (String, usize, Vec<u8>);

/// An in-memory store several scenarios (instances) share. Versions are the value read, so
/// a swap succeeds only when nobody wrote in between.
#[derive(Clone, Default)]
struct Mem {
    data: Rc<RefCell<HashMap<String, Vec<u8>>>>,
    /// Fail every call with this text.
    broken: Rc<RefCell<Option<String>>>,
    /// After this many reads of a key, write the value (another instance finishing).
    inject: Rc<RefCell<Option<Injection>>>,
    reads: Rc<RefCell<usize>>,
}

impl Mem {
    fn only_key(&self) -> String {
        let data = self.data.borrow();
        let keys: Vec<_> = data
            .keys()
            .filter(|k| !k.ends_with("/lease"))
            .cloned()
            .collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        keys[0].clone()
    }

    fn put(&self, key: &str, value: &[u8]) {
        self.data
            .borrow_mut()
            .insert(key.to_string(), value.to_vec());
    }
}

impl SharedStore for Mem {
    type Version = Option<Vec<u8>>;

    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Self::Version), StoreError> {
        if let Some(why) = self.broken.borrow().clone() {
            return Err(StoreError(why));
        }
        *self.reads.borrow_mut() += 1;
        if let Some((k, after, value)) = self.inject.borrow_mut().as_mut()
            && k == key
        {
            if *after == 0 {
                self.data.borrow_mut().insert(k.clone(), value.clone());
            } else {
                *after -= 1;
            }
        }
        let value = self.data.borrow().get(key).cloned();
        Ok((value.clone(), value))
    }

    fn swap(
        &mut self,
        key: &str,
        version: Self::Version,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        if self.data.borrow().get(key).cloned() != version {
            return Ok(false);
        }
        self.put(key, value);
        Ok(true)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put(key, value);
        Ok(())
    }
}

fn token(value: &str, expires_in: u64) -> super::harness::Scripted {
    json(
        200,
        j!({"access_token": value, "expires_in": expires_in, "token_type": "Bearer"}),
    )
}

#[test]
fn two_instances_sharing_a_store_make_one_request() {
    let mem = Mem::default();
    let mut first = Scenario::imds().reply(token("shared", 86_399));
    let run = first.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    assert_eq!(run.requests.len(), 1);
    let mut second = Scenario::imds();
    let run = second.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    run.assert_nothing_sent();
    assert_eq!(run.token().secret(), "shared");
    // The entry is released with the lease: the next instance needs no lease either.
    let lease = mem.data.borrow().get(&lease_key(&mem.only_key())).cloned();
    assert!(crate::proto::lease_until(lease.as_deref(), second.now()).is_none());
}

#[test]
fn a_follower_waits_for_the_leader_and_sends_nothing() {
    let mem = Mem::default();
    // Learn the key with a first instance, then start over with only a live foreign lease.
    let mut leader = Scenario::imds().reply(token("from-the-leader", 86_399));
    leader.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    let key = mem.only_key();
    let entry = mem.data.borrow_mut().remove(&key).expect("entry");
    mem.put(
        &lease_key(&key),
        &encode_lease(T0.plus_millis(LEASE_MS), 99),
    );
    // The leader finishes after the follower has read the entry three times.
    *mem.inject.borrow_mut() = Some((key, 3, entry));
    let mut follower = Scenario::imds();
    let run = follower.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    run.assert_nothing_sent();
    assert_eq!(run.token().secret(), "from-the-leader");
    assert_eq!(
        run.sleeps.len(),
        3,
        "polled every {FOLLOW_POLL_MS} ms: {:?}",
        run.sleeps
    );
    assert_eq!(run.finished_at, T0.plus_millis(3 * FOLLOW_POLL_MS));
}

#[test]
fn a_lease_taken_just_after_we_read_the_clock_holds() {
    let mem = Mem::default();
    let mut leader = Scenario::imds().reply(token("from-the-leader", 86_399));
    leader.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    let key = mem.only_key();
    let entry = mem.data.borrow_mut().remove(&key).expect("entry");
    // The leader read its clock 10 ms after we read ours: its lease ends past T0 + LEASE_MS.
    mem.put(
        &lease_key(&key),
        &encode_lease(T0.plus_millis(LEASE_MS + 10), 99),
    );
    *mem.inject.borrow_mut() = Some((key, 2, entry));
    let mut follower = Scenario::imds();
    let run = follower.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    run.assert_nothing_sent();
    assert_eq!(run.token().secret(), "from-the-leader");
}

#[test]
fn an_entry_written_just_before_our_lease_is_used_not_refetched() {
    let mem = Mem::default();
    let mut leader = Scenario::imds().reply(token("from-the-leader", 86_399));
    leader.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    let key = mem.only_key();
    let entry = mem.data.borrow_mut().remove(&key).expect("entry");
    // The leader released its lease; its entry lands after our first read of the entry, so
    // the lease looks free and our swap wins (two `azmi serve` processes on Redis hit this).
    mem.put(&lease_key(&key), &encode_lease(UnixMillis(0), 99));
    *mem.inject.borrow_mut() = Some((key.clone(), 1, entry));
    let mut late = Scenario::imds();
    let run = late.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    run.assert_nothing_sent();
    assert_eq!(run.token().secret(), "from-the-leader");
    let lease = mem.data.borrow().get(&lease_key(&key)).cloned();
    assert!(
        crate::proto::lease_until(lease.as_deref(), late.now()).is_none(),
        "our lease is released"
    );
}

#[test]
fn a_dead_leaders_lease_ends_and_the_next_instance_fetches() {
    let mem = Mem::default();
    let mut probe = Scenario::imds().reply(token("t", 86_399));
    probe.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    let key = mem.only_key();
    mem.data.borrow_mut().clear();
    mem.put(
        &lease_key(&key),
        &encode_lease(T0.plus_millis(LEASE_MS), 99),
    );
    let mut next = Scenario::imds().reply(token("after-the-lease", 86_399));
    let run = next.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    assert_eq!(run.token().secret(), "after-the-lease");
    assert_eq!(
        run.sent_at,
        vec![T0.plus_millis(LEASE_MS)],
        "fetched when the lease ended"
    );
}

#[test]
fn corrupt_or_foreign_entries_are_refetched_and_overwritten() {
    let mem = Mem::default();
    let mut s = Scenario::imds().reply(token("good", 86_399));
    s.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    let key = mem.only_key();
    for bad in [&b"{not json"[..], br#"{"v":9}"#, b"\xff\xfe", b""] {
        mem.put(&key, bad);
        let mut other = Scenario::imds().reply(token("refetched", 86_399));
        let run = other.run_shared(&mut Some(mem.clone()), &mut Vec::new());
        assert_eq!(run.token().secret(), "refetched");
        let stored = mem.data.borrow().get(&key).cloned().expect("entry");
        assert_eq!(
            decode_entry(&stored).expect("valid now").secret(),
            "refetched"
        );
    }
}

#[test]
fn a_failing_store_degrades_to_the_instance_cache_with_one_warning() {
    let mem = Mem::default();
    *mem.broken.borrow_mut() = Some("connection refused".into());
    let mut store = Some(mem);
    let mut warnings = Vec::new();
    let mut s = Scenario::imds().reply(token("local", 86_399));
    let run = s.run_shared(&mut store, &mut warnings);
    assert_eq!(run.token().secret(), "local");
    assert!(store.is_none(), "the store is dropped");
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("connection refused"), "{warnings:?}");
    let run = s.run_shared(&mut store, &mut warnings);
    run.assert_nothing_sent();
    assert_eq!(warnings.len(), 1, "one warning");
}

#[test]
fn a_due_refresh_happens_once_through_the_store() {
    let mem = Mem::default();
    let mut a = Scenario::imds().reply(token("old", 7_200));
    a.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    let due = UnixMillis::from_secs(T0_SECS + 3_601);
    // Another instance, new to the token, finds it due and refreshes it for everyone.
    let mut b = Scenario::imds().reply(token("new", 7_200));
    b.advance_to(due);
    let run = b.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    assert_eq!((run.requests.len(), run.token().secret()), (1, "new"));
    // The first instance's own copy is due too: it reads the new one and sends nothing.
    a.advance_to(due);
    let run = a.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    run.assert_nothing_sent();
    assert_eq!(run.token().secret(), "new");
}

#[test]
fn while_another_instance_refreshes_the_old_token_is_served() {
    let mem = Mem::default();
    let mut a = Scenario::imds().reply(token("old", 7_200));
    a.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    let key = mem.only_key();
    let due = UnixMillis::from_secs(T0_SECS + 3_601);
    mem.put(&lease_key(&key), &encode_lease(due.plus_millis(1_000), 99));
    let mut b = Scenario::imds();
    b.advance_to(due);
    let run = b.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    run.assert_nothing_sent();
    assert_eq!(run.token().secret(), "old");
    assert!(run.sleeps.is_empty(), "served at once");
}

#[test]
fn a_failed_refresh_holds_the_lease_so_the_others_serve_the_old_token() {
    let mem = Mem::default();
    let mut a = Scenario::imds().reply(token("old", 7_200));
    a.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    let due = UnixMillis::from_secs(T0_SECS + 3_601);
    let mut b = Scenario::imds().reply(json(400, j!({"error": "invalid_request"})));
    b.advance_to(due);
    let run = b.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    assert_eq!((run.requests.len(), run.token().secret()), (1, "old"));
    // A third instance, still inside the hold: the old token, no request.
    let mut c = Scenario::imds();
    c.advance_to(due.plus_millis(1_000));
    let run = c.run_shared(&mut Some(mem.clone()), &mut Vec::new());
    run.assert_nothing_sent();
    assert_eq!(run.token().secret(), "old");
}
