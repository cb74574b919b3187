//! The fetch's timers: a fixed table indexed by [`Timer`], whose earliest entry is what
//! [`super::Acquisition::poll_timeout`] reports (quinn-proto's `TimerTable` idea).

use crate::proto::time::UnixMillis;

/// The instants a fetch waits for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The request in flight gives up here: its per-attempt timeouts plus a little slack,
    /// never past the call's deadline. The host enforces the real timeouts; this backstop
    /// catches a host that does not.
    Attempt,
    /// The next attempt starts here (backoff after a retryable failure).
    Backoff,
}

const COUNT: usize = 2;

/// One optional instant per [`Timer`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Timers([Option<UnixMillis>; COUNT]);

impl Timers {
    /// Arms `timer` for `at`, replacing any earlier setting.
    pub(crate) fn set(&mut self, timer: Timer, at: UnixMillis) {
        self.0[timer as usize] = Some(at);
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    /// When `timer` fires, if armed.
    pub(crate) fn get(&self, timer: Timer) -> Option<UnixMillis> {
        self.0[timer as usize]
    }

    /// Disarms every timer.
    pub(crate) fn clear(&mut self) {
        self.0 = [None; COUNT];
    }

    /// The earliest armed instant.
    pub(crate) fn next(&self) -> Option<UnixMillis> {
        self.0.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_the_earliest_armed_timer() {
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.set(Timer::Backoff, UnixMillis(50));
        timers.set(Timer::Attempt, UnixMillis(20));
        assert_eq!(timers.next(), Some(UnixMillis(20)));
        timers.stop(Timer::Attempt);
        assert_eq!(timers.next(), Some(UnixMillis(50)));
        timers.clear();
        assert_eq!(timers.get(Timer::Backoff), None);
    }
}
