//! The glue over a host that returns a non-OK status on purpose (issue 11, defect 12): every
//! status is logged and answered, the VM never traps, and no request goes on without the
//! header the filter was asked to set.

use super::T0;
use crate::proto::{AccessToken, Source};
use crate::proxy_wasm::glue::{self, HEADER_FAILED_BODY, Host, HostStatus};
use crate::proxy_wasm::stats::{MetricKind, Stats};
use crate::proxy_wasm::token_root::{Bearer, Effects, Level, LocalReply, RequestStep, Verdict};
use std::cell::Cell;

const INTERNAL_FAILURE: HostStatus = HostStatus(10);
const BAD_ARGUMENT: HostStatus = HostStatus(2);

/// Records every call (with the effective context) and fails the calls named in `fail`.
#[derive(Default)]
struct FakeHost {
    context: u32,
    calls: Vec<String>,
    log: Vec<(Level, String)>,
    /// (call name, context) pairs that fail with internal failure; `gone` contexts refuse to
    /// become effective (a stream that ended).
    fail: Vec<(&'static str, u32)>,
    gone: Vec<u32>,
    fail_log: bool,
}

impl FakeHost {
    fn call(&mut self, name: &'static str, detail: String) -> Result<(), HostStatus> {
        self.calls.push(format!("{}:{name}{detail}", self.context));
        if self.fail.contains(&(name, self.context)) {
            Err(INTERNAL_FAILURE)
        } else {
            Ok(())
        }
    }
}

impl Host for FakeHost {
    fn log(&mut self, level: Level, message: &str) -> Result<(), HostStatus> {
        if self.fail_log {
            return Err(INTERNAL_FAILURE);
        }
        self.log.push((level, message.to_string()));
        Ok(())
    }
    fn set_header(&mut self, name: &str, value: Option<&str>) -> Result<(), HostStatus> {
        self.call("set_header", format!(" {name}={value:?}"))
    }
    fn send_reply(&mut self, reply: &LocalReply) -> Result<(), HostStatus> {
        self.call("send_reply", format!(" {}", reply.status))
    }
    fn resume_request(&mut self) -> Result<(), HostStatus> {
        self.call("resume", String::new())
    }
    fn set_effective_context(&mut self, id: u32) -> Result<(), HostStatus> {
        if self.gone.contains(&id) {
            return Err(BAD_ARGUMENT);
        }
        self.context = id;
        Ok(())
    }
    fn set_tick_period(&mut self, ms: u64) -> Result<(), HostStatus> {
        self.call("tick", format!(" {ms}"))
    }
    fn define_metric(&mut self, _kind: MetricKind, _name: &str) -> Result<u32, HostStatus> {
        Err(INTERNAL_FAILURE)
    }
    fn increment_metric(&mut self, _id: u32, _delta: i64) -> Result<(), HostStatus> {
        Err(INTERNAL_FAILURE)
    }
    fn record_metric(&mut self, _id: u32, _value: u64) -> Result<(), HostStatus> {
        Err(INTERNAL_FAILURE)
    }
}

fn forward() -> Verdict {
    let token = AccessToken::new("s3cr3t-tok".into(), 1_900_000_000, T0, None, Source::Imds);
    Verdict::Forward(Bearer::new(&token))
}

fn warned(host: &FakeHost, text: &str) -> bool {
    host.log
        .iter()
        .any(|(level, line)| *level == Level::Warn && line.contains(text))
}

#[test]
fn a_header_the_host_refuses_to_set_ends_the_request_with_a_503_not_a_trap() {
    let mut host = FakeHost {
        context: 7,
        fail: vec![("set_header", 7)],
        ..FakeHost::default()
    };
    let step = RequestStep {
        verdict: forward(),
        wake: false,
        log: None,
    };
    assert!(
        !glue::on_request(&mut host, &Stats::default(), "authorization", &step),
        "not forwarded"
    );
    assert_eq!(host.calls.last().unwrap(), "7:send_reply 503");
    assert!(
        warned(
            &host,
            "could not set the authorization header (InternalFailure (10))"
        ),
        "{:?}",
        host.log
    );
    assert!(
        !format!("{:?}", host.log).contains("s3cr3t"),
        "no token in the log: {:?}",
        host.log
    );
    // Removing a client's header (fail mode allow) fails the same way: not forwarded.
    let mut host = FakeHost {
        fail: vec![("set_header", 0), ("send_reply", 0)],
        ..FakeHost::default()
    };
    assert!(!glue::apply(
        &mut host,
        &Stats::default(),
        "authorization",
        &Verdict::ForwardUnauthenticated
    ));
    assert!(
        warned(&host, "could not send the local 503 reply"),
        "{:?}",
        host.log
    );
    assert!(HEADER_FAILED_BODY.contains("token header"));
}

#[test]
fn a_refused_resume_or_reply_is_logged_and_the_other_streams_are_still_served() {
    let mut host = FakeHost {
        context: 1,
        fail: vec![("resume", 10), ("send_reply", 12)],
        gone: vec![11],
        ..FakeHost::default()
    };
    let reply = LocalReply {
        status: 503,
        body: "{}".into(),
    };
    let effects = Effects {
        resume: vec![
            (10, forward()),
            (11, forward()),
            (12, Verdict::Reply(reply)),
            (13, forward()),
        ],
        log: vec![(Level::Info, "fetched".into())],
        ..Effects::default()
    };
    glue::perform(&mut host, &Stats::default(), 1, "authorization", &effects);
    let calls: Vec<&str> = host
        .calls
        .iter()
        .map(|c| c.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        calls,
        [
            "10:set_header",
            "10:resume",
            "12:send_reply",
            "13:set_header",
            "13:resume"
        ],
        "11 ended: skipped; the others all served"
    );
    assert!(warned(
        &host,
        "could not resume request 10: InternalFailure (10)"
    ));
    assert!(warned(&host, "could not send the local 503 reply"));
    assert_eq!(host.context, 1, "the root is the effective context again");
}

#[test]
fn a_refused_tick_period_or_log_is_not_a_trap() {
    let mut host = FakeHost {
        fail: vec![("tick", 0)],
        ..FakeHost::default()
    };
    let tick = Cell::new(None);
    glue::schedule(&mut host, &tick, Some(1));
    glue::schedule(&mut host, &tick, Some(5));
    glue::schedule_from_tick(&mut host, &tick, None);
    assert_eq!(host.calls, ["0:tick 1", "0:tick 0", "0:tick 5", "0:tick 0"]);
    assert!(warned(
        &host,
        "set_tick_period(1 ms) failed: InternalFailure (10)"
    ));
    assert_eq!(tick.get(), None);
    // A log call the host refuses has nowhere to go: dropped, nothing else happens.
    host.fail_log = true;
    glue::log(&mut host, Level::Warn, "lost");
    glue::schedule(&mut host, &tick, Some(1));
    assert_eq!(host.calls.len(), 5);
}
