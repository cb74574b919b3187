//! The native core's cached path: `ManagedIdentity::cached` after one completed fetch,
//! driven through a fake `azmi::drive::Io` that answers from memory.

use crate::{alloc, timing};
use azmi::drive::{self, Io};
use azmi::proto::{
    AccessToken, Cached, EnvSnapshot, FileError, FileErrorKind, FileRead, HostFacts, HttpRequest,
    HttpResponse, IdentitySelector, ManagedIdentity, TokenRequest, TransportError, UnixMillis,
};
use std::hint::black_box;

/// What the native core costs per cached lookup.
pub struct Core {
    /// Time per `cached` call.
    pub cached: timing::Stats,
    /// Allocations per `cached` call.
    pub allocations: f64,
}

/// An IMDS that answers every request at once with one token, and a clock that only moves
/// when the core sleeps.
struct FakeImds {
    now: UnixMillis,
    body: Vec<u8>,
}

impl Io for FakeImds {
    fn now(&mut self) -> UnixMillis {
        self.now
    }

    fn send(&mut self, _request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        Ok(HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: self.body.clone(),
        })
    }

    fn read_file(&mut self, read: &FileRead) -> Result<Vec<u8>, FileError> {
        Err(FileError::new(FileErrorKind::NoAccess, read.path.clone()))
    }

    fn sleep_until(&mut self, deadline: UnixMillis) {
        self.now = self.now.max(deadline);
    }

    fn env(&mut self) -> EnvSnapshot {
        EnvSnapshot::default()
    }

    fn facts(&mut self) -> HostFacts {
        HostFacts::default()
    }

    fn random(&mut self) -> [u8; 16] {
        [7; 16]
    }
}

/// Fetches one token for `scope` (IMDS, system-assigned) through the fake, then times
/// `cached` for the same key.
pub fn measure(scope: &str, samples: usize, batch: u64) -> Core {
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let now = UnixMillis::from_secs(now_secs);
    let body = serde_json::json!({
        "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.bench.signature",
        "expires_in": "86399",
        "expires_on": (now_secs + 86_399).to_string(),
        "resource": "https://vault.azure.net",
        "token_type": "Bearer",
    });
    let mut io = FakeImds {
        now,
        body: body.to_string().into_bytes(),
    };
    let selector = IdentitySelector::SystemAssigned;
    let mut identity = ManagedIdentity::new();
    let request = TokenRequest::new(scope, &selector);
    drive::get_token(&mut identity, &request, &mut io, AccessToken::clone)
        .expect("the fake IMDS issues a token");
    let mut lookup = |calls: u64| {
        for _ in 0..calls {
            let hit = identity.cached(black_box(now), black_box(scope), black_box(&selector));
            assert!(matches!(black_box(hit), Ok(Cached::Fresh(_))), "cache miss");
        }
    };
    let allocations = alloc::per_call(10_000, &mut lookup);
    Core {
        cached: timing::batched(samples, batch, lookup),
        allocations,
    }
}
