//! Where a call's time goes between the guest and the host: a wasmtime call hook that adds up
//! the time spent running wasm and the time spent in host calls (WASI, wasi:http and whatever
//! they await, such as the network). Two `Instant::now` reads per crossing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{CallHook, Store};

/// The time split of the calls made since [`GuestTime::install`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Split {
    /// Running wasm.
    pub guest: Duration,
    /// Inside host functions the guest called (including what they awaited).
    pub host: Duration,
    /// Host calls made.
    pub host_calls: u32,
}

#[derive(Default)]
struct Clock {
    split: Split,
    since: Option<Instant>,
}

/// A call hook on one store.
pub struct GuestTime(Arc<Mutex<Clock>>);

impl GuestTime {
    /// Installs the hook on `store` (replacing any other).
    pub fn install<T: 'static>(store: &mut Store<T>) -> GuestTime {
        let clock = Arc::new(Mutex::new(Clock::default()));
        let hook = clock.clone();
        store.call_hook(move |_, event| {
            let now = Instant::now();
            let mut clock = hook.lock().unwrap_or_else(|e| e.into_inner());
            let spent = clock.since.map_or(Duration::ZERO, |since| now - since);
            match event {
                CallHook::CallingWasm | CallHook::ReturningFromHost => {
                    if matches!(event, CallHook::ReturningFromHost) {
                        clock.split.host += spent;
                    }
                }
                CallHook::CallingHost | CallHook::ReturningFromWasm => {
                    clock.split.guest += spent;
                    if matches!(event, CallHook::CallingHost) {
                        clock.split.host_calls += 1;
                    }
                }
            }
            clock.since = Some(now);
            Ok(())
        });
        GuestTime(clock)
    }

    /// What the calls so far took.
    pub fn split(&self) -> Split {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).split
    }
}
