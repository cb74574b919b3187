// About 420 lines: one test per shared-store rule, each driving two or three workers step by
// step on virtual time (the steps are the point of the test).
//! Workers (root contexts) sharing one store with Envoy's shared-data rules: one token
//! request for all, a worker that finds another's lease waits and sends nothing, a dead lease
//! ends, corrupt entries are fetched again, a failing store leaves each worker on its own, a
//! refresh is made once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::{Calls, IMDS, T0, bearer, imds_root, root, token_response};
use crate::drive::SharedStore;
use crate::proto::{
    AccessToken, EnvSnapshot, FOLLOW_POLL_MS, HostFacts, IdentitySelector, LEASE_MS,
    ManagedIdentity, Source, TokenRequest, UnixMillis, decode_entry, encode_entry, encode_lease,
    lease_key,
};
use crate::proxy_wasm::store::{CasStore, PLACEHOLDER, SharedData};
use crate::proxy_wasm::token_root::{Level, TokenRoot, Verdict};

/// Envoy's shared data in memory: values with CAS numbers; a write with a stale CAS number
/// fails, a write to an absent key always succeeds. Clones share the data.
#[derive(Clone, Default)]
pub(super) struct Mem(Rc<RefCell<Data>>);

#[derive(Default)]
struct Data {
    values: HashMap<String, (Vec<u8>, u32)>,
    cas: u32,
    broken: bool,
}

impl SharedData for Mem {
    fn get(&mut self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), String> {
        let data = self.0.borrow();
        if data.broken {
            return Err("get_shared_data failed: InternalFailure".into());
        }
        Ok(data
            .values
            .get(key)
            .map_or((None, None), |(v, cas)| (Some(v.clone()), Some(*cas))))
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<bool, String> {
        let mut data = self.0.borrow_mut();
        if data.broken {
            return Err("set_shared_data failed: InternalFailure".into());
        }
        if let (Some((_, current)), Some(cas)) = (data.values.get(key), cas)
            && *current != cas
        {
            return Ok(false);
        }
        data.cas += 1;
        let next = data.cas;
        data.values.insert(key.to_string(), (value.to_vec(), next));
        Ok(true)
    }
}

impl Mem {
    fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().values.get(key).map(|(v, _)| v.clone())
    }

    fn put(&self, key: &str, value: &[u8]) {
        self.clone().set(key, value, None).unwrap();
    }
}

/// The store key of [`imds_root`]'s token.
fn key() -> String {
    let env = EnvSnapshot::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)]);
    let facts = HostFacts {
        arc_agent_present: false,
        no_file_access: true,
    };
    let selector = IdentitySelector::SystemAssigned;
    let request = TokenRequest::new("https://vault.azure.net/.default", &selector);
    ManagedIdentity::share(&env, facts, &request).unwrap().key
}

fn stored(value: &str, now: UnixMillis, lifetime: u64) -> Vec<u8> {
    let expires_on = now.as_secs() + lifetime;
    encode_entry(&AccessToken::from_parts(
        value.into(),
        expires_on,
        expires_on - lifetime / 2,
        expires_on - 300,
        Source::Imds,
    ))
}

/// One worker: its root, its dispatcher and its view of the shared store.
struct Worker {
    root: TokenRoot,
    calls: Calls,
    store: CasStore<Mem>,
}

impl Worker {
    fn new(mem: &Mem) -> Self {
        Self {
            root: imds_root(),
            calls: Calls::default(),
            store: CasStore(mem.clone()),
        }
    }

    /// Ticks whenever the root asks, from `now` until `until`; the resumed streams.
    fn tick_until(&mut self, mut now: UnixMillis, until: UnixMillis) -> Vec<(u32, Verdict)> {
        let mut resumed = Vec::new();
        while let Some(wait) = self.root.next_tick_ms(now) {
            now = now.plus_millis(wait);
            if now > until {
                break;
            }
            let effects = self.root.on_tick(now, &mut self.calls, &mut self.store);
            resumed.extend(effects.resume);
        }
        resumed
    }
}

#[test]
fn two_workers_sharing_a_store_make_one_token_request() {
    let mem = Mem::default();
    let (mut a, mut b) = (Worker::new(&mem), Worker::new(&mem));
    assert!(a.root.on_request(T0, 1, &mut a.store).wake);
    assert!(b.root.on_request(T0, 1, &mut b.store).wake);
    // Both tick at once: the first takes the lease and fetches, the second follows.
    b.root.on_tick(T0, &mut b.calls, &mut b.store);
    a.root.on_tick(T0, &mut a.calls, &mut a.store);
    assert_eq!((a.calls.sent.len(), b.calls.sent.len()), (0, 1));
    assert_eq!(a.root.next_tick_ms(T0), Some(FOLLOW_POLL_MS));
    assert!(a.tick_until(T0, T0.plus_millis(100)).is_empty(), "a waits");
    let now = T0.plus_millis(120);
    let effects = b.root.on_response(
        now,
        1,
        Ok(token_response("shared", now, 86_399)),
        &mut b.calls,
        &mut b.store,
    );
    assert_eq!(bearer(&effects.resume[0].1), "Bearer shared");
    let resumed = a.tick_until(now, now.plus_millis(FOLLOW_POLL_MS));
    assert_eq!(resumed.len(), 1);
    assert_eq!(bearer(&resumed[0].1), "Bearer shared");
    assert_eq!(a.root.next_tick_ms(now), None, "idle again");
    // A third worker starting later serves the entry at once, without a tick.
    let mut c = Worker::new(&mem);
    let step = c.root.on_request(now, 1, &mut c.store);
    assert_eq!((bearer(&step.verdict), step.wake), ("Bearer shared", false));
    let sent = a.calls.sent.len() + b.calls.sent.len() + c.calls.sent.len();
    assert_eq!(sent, 1, "one token request for three workers");
    assert!(!String::from_utf8_lossy(&mem.value(&lease_key(&key())).unwrap()).contains("shared"));
}

#[test]
fn a_worker_that_finds_a_live_lease_waits_and_resumes_with_the_entry_the_other_wrote() {
    let mem = Mem::default();
    let key = key();
    mem.put(
        &lease_key(&key),
        &encode_lease(T0.plus_millis(LEASE_MS), 99),
    );
    let mut w = Worker::new(&mem);
    assert_eq!(
        w.root.on_request(T0, 1, &mut w.store).verdict,
        Verdict::Pause
    );
    w.root.on_tick(T0, &mut w.calls, &mut w.store);
    assert!(w.root.is_waiting(1));
    assert!(w.tick_until(T0, T0.plus_millis(500)).is_empty());
    // A request arriving meanwhile waits too, without another wake-up.
    let late = w.root.on_request(T0.plus_millis(500), 2, &mut w.store);
    assert_eq!((late.verdict, late.wake), (Verdict::Pause, false));
    // The other worker finishes.
    let done = T0.plus_millis(510);
    mem.put(&key, &stored("from-the-other", done, 86_399));
    mem.put(&lease_key(&key), &encode_lease(UnixMillis(0), 99));
    let resumed = w.tick_until(T0.plus_millis(500), done.plus_millis(FOLLOW_POLL_MS));
    let ids: Vec<u32> = resumed.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(bearer(&resumed[0].1), "Bearer from-the-other");
    assert!(w.calls.sent.is_empty(), "nothing dispatched");
}

#[test]
fn a_dead_lease_ends_and_the_next_worker_fetches() {
    let mem = Mem::default();
    let until = T0.plus_millis(LEASE_MS);
    mem.put(&lease_key(&key()), &encode_lease(until, 99));
    let mut w = Worker::new(&mem);
    w.root.on_request(T0, 1, &mut w.store);
    w.root.on_tick(T0, &mut w.calls, &mut w.store);
    w.tick_until(T0, until.plus_millis(FOLLOW_POLL_MS));
    assert_eq!(
        w.calls.sent.len(),
        1,
        "the lease ended: this worker fetches"
    );
    assert!(w.root.is_waiting(1));
    let effects = w.root.on_response(
        until,
        1,
        Ok(token_response("mine", until, 86_399)),
        &mut w.calls,
        &mut w.store,
    );
    assert_eq!(bearer(&effects.resume[0].1), "Bearer mine");
    let entry = decode_entry(&mem.value(&key()).unwrap()).unwrap();
    assert_eq!(entry.secret(), "mine");
}

#[test]
fn a_corrupt_entry_is_fetched_again_and_overwritten() {
    let mem = Mem::default();
    mem.put(&key(), b"{\"v\":1,\"access_token\":");
    let mut w = Worker::new(&mem);
    assert_eq!(
        w.root.on_request(T0, 1, &mut w.store).verdict,
        Verdict::Pause
    );
    w.root.on_tick(T0, &mut w.calls, &mut w.store);
    assert_eq!(w.calls.sent.len(), 1);
    let now = T0.plus_millis(5);
    w.root.on_response(
        now,
        1,
        Ok(token_response("fresh", now, 86_399)),
        &mut w.calls,
        &mut w.store,
    );
    assert_eq!(
        decode_entry(&mem.value(&key()).unwrap()).unwrap().secret(),
        "fresh"
    );
}

#[test]
fn a_failing_store_leaves_the_worker_on_its_own_cache_with_one_warning() {
    let mem = Mem::default();
    mem.0.borrow_mut().broken = true;
    let mut w = Worker::new(&mem);
    let step = w.root.on_request(T0, 1, &mut w.store);
    assert_eq!((step.verdict, step.wake), (Verdict::Pause, true));
    let mut log = w.root.on_tick(T0, &mut w.calls, &mut w.store).log;
    assert_eq!(w.calls.sent.len(), 1, "fetched on its own at once");
    let effects = w.root.on_response(
        T0,
        1,
        Ok(token_response("own", T0, 86_399)),
        &mut w.calls,
        &mut w.store,
    );
    assert_eq!(bearer(&effects.resume[0].1), "Bearer own");
    log.extend(effects.log);
    let warnings: Vec<_> = log.iter().filter(|(l, _)| *l == Level::Warn).collect();
    assert_eq!(warnings.len(), 1, "{log:?}");
    assert!(warnings[0].1.contains("shared token cache is unavailable"));
    assert!(warnings[0].1.contains("InternalFailure"));
    assert_eq!(
        bearer(&w.root.on_request(T0, 2, &mut w.store).verdict),
        "Bearer own"
    );
}

#[test]
fn a_refresh_through_the_store_is_made_once() {
    let mem = Mem::default();
    let (mut a, mut b) = (Worker::new(&mem), Worker::new(&mem));
    // a fetches a two-hour token (refreshed at half-life); b reads it from the store.
    a.root.on_request(T0, 1, &mut a.store);
    a.tick_until(T0, T0.plus_millis(FOLLOW_POLL_MS));
    a.root.on_response(
        T0,
        1,
        Ok(token_response("old", T0, 7_200)),
        &mut a.calls,
        &mut a.store,
    );
    assert_eq!(
        bearer(&b.root.on_request(T0, 1, &mut b.store).verdict),
        "Bearer old"
    );
    let due = T0.plus_millis(3_601_000);
    for w in [&mut a, &mut b] {
        let step = w.root.on_request(due, 2, &mut w.store);
        assert_eq!((bearer(&step.verdict), step.wake), ("Bearer old", true));
    }
    a.root.on_tick(due, &mut a.calls, &mut a.store);
    b.root.on_tick(due, &mut b.calls, &mut b.store);
    assert_eq!((a.calls.sent.len(), b.calls.sent.len()), (2, 0));
    assert_eq!(
        bearer(&b.root.on_request(due, 3, &mut b.store).verdict),
        "Bearer old",
        "served during the other's refresh"
    );
    a.root.on_response(
        due,
        2,
        Ok(token_response("new", due, 7_200)),
        &mut a.calls,
        &mut a.store,
    );
    let later = due.plus_millis(5);
    b.root.on_request(later, 4, &mut b.store);
    b.root.on_tick(later, &mut b.calls, &mut b.store);
    assert_eq!(
        bearer(&b.root.on_request(later, 5, &mut b.store).verdict),
        "Bearer new"
    );
    assert_eq!(b.calls.sent.len(), 0, "one refresh for both workers");
}

#[test]
fn a_failed_refresh_holds_the_lease_so_the_others_keep_the_token() {
    let mem = Mem::default();
    let mut a = Worker::new(&mem);
    a.root.on_request(T0, 1, &mut a.store);
    a.tick_until(T0, T0.plus_millis(FOLLOW_POLL_MS));
    let refused = crate::proto::HttpResponse {
        status: 400,
        headers: vec![],
        body: br#"{"error":"invalid_request","error_description":"bad"}"#.to_vec(),
    };
    a.root.on_response(
        T0,
        1,
        Ok(token_response("old", T0, 7_200)),
        &mut a.calls,
        &mut a.store,
    );
    let due = T0.plus_millis(3_601_000);
    a.root.on_request(due, 2, &mut a.store);
    a.root.on_tick(due, &mut a.calls, &mut a.store);
    a.root
        .on_response(due, 2, Ok(refused), &mut a.calls, &mut a.store);
    let mut b = Worker::new(&mem);
    let step = b.root.on_request(due.plus_millis(1), 1, &mut b.store);
    assert_eq!(bearer(&step.verdict), "Bearer old");
    b.root
        .on_tick(due.plus_millis(1), &mut b.calls, &mut b.store);
    assert!(
        b.calls.sent.is_empty(),
        "the lease is held after the failed refresh"
    );
}

#[test]
fn shared_cache_false_leaves_the_store_alone() {
    let mem = Mem::default();
    let mut store = CasStore(mem.clone());
    let mut root = root(
        r#"{"scope": "https://vault.azure.net/.default", "cluster": "imds", "shared_cache": false}"#,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS)],
    );
    let mut calls = Calls::default();
    root.on_request(T0, 1, &mut store);
    root.on_tick(T0, &mut calls, &mut store);
    assert_eq!(calls.sent.len(), 1);
    root.on_response(
        T0,
        1,
        Ok(token_response("t", T0, 86_399)),
        &mut calls,
        &mut store,
    );
    assert!(mem.0.borrow().values.is_empty());
}

#[test]
fn a_swap_on_an_absent_key_creates_it_and_only_one_conditional_swap_wins() {
    let mem = Mem::default();
    let (mut one, mut two) = (CasStore(mem.clone()), CasStore(mem.clone()));
    // Both find the key absent; the first creates it and swaps; the second finds it
    // written meanwhile and loses.
    let (_, absent_one) = one.get("k").unwrap();
    let (_, absent_two) = two.get("k").unwrap();
    assert_eq!((absent_one, absent_two), (None, None));
    assert!(one.swap("k", absent_one, b"one").unwrap());
    assert!(!two.swap("k", absent_two, b"two").unwrap());
    assert_eq!(mem.value("k").as_deref(), Some(&b"one"[..]));
    // Later swaps are conditional on the CAS number: only one of two readers wins.
    let (_, v1) = one.get("k").unwrap();
    let (_, v2) = two.get("k").unwrap();
    assert!(two.swap("k", v2, b"two").unwrap());
    assert!(!one.swap("k", v1, b"one").unwrap());
    assert_eq!(mem.value("k").as_deref(), Some(&b"two"[..]));
    // The placeholder reads as neither an entry nor a lease.
    assert!(decode_entry(PLACEHOLDER).is_none());
    assert!(crate::proto::lease_until(Some(PLACEHOLDER), T0).is_none());
}

#[test]
fn a_store_that_fails_while_following_wakes_the_root_to_fetch_alone() {
    let mem = Mem::default();
    mem.put(
        &lease_key(&key()),
        &encode_lease(T0.plus_millis(LEASE_MS), 99),
    );
    let mut w = Worker::new(&mem);
    w.root.on_request(T0, 1, &mut w.store);
    w.root.on_tick(T0, &mut w.calls, &mut w.store);
    assert_eq!(w.root.next_tick_ms(T0), Some(FOLLOW_POLL_MS), "following");
    mem.0.borrow_mut().broken = true;
    let step = w.root.on_request(T0.plus_millis(5), 2, &mut w.store);
    assert_eq!((step.verdict, step.wake), (Verdict::Pause, true));
    let effects = w
        .root
        .on_tick(T0.plus_millis(6), &mut w.calls, &mut w.store);
    assert_eq!(w.calls.sent.len(), 1);
    assert_eq!(effects.log.len(), 1, "{:?}", effects.log);
}
