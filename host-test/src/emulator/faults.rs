//! Fault injection for the emulator.
//!
//! Faults sit in a FIFO queue ([`super::Emulator::push_fault`]); the fault at the front applies to
//! the next token request and is used up after `times` requests. Faults fall into three groups:
//!
//! * **replacing** faults ([`Fault::Status`], [`Fault::Html`], [`Fault::MalformedBody`],
//!   [`Fault::EmptyBody`]) answer the next token request themselves, before the source validates
//!   anything (they model an infrastructure failure in front of the real endpoint);
//! * [`Fault::Delay`] lets the source answer normally and only sets [`super::Response::delay`];
//! * **shaping** faults ([`Fault::HugeBody`], [`Fault::Expiry`], [`Fault::Lifetime`]) change the
//!   next *successful* token response; a request that fails validation leaves them in place.
//!
//! The unauthenticated first request of the Azure Arc challenge flow never takes a fault.
//! A fault pushed with `times == 0` is ignored.

use std::time::Duration;

/// One injected failure or response variation; see the module documentation for when it applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fail `times` token requests with HTTP `status`. `body` replaces the source's error body
    /// (default: the source's own error shape); `retry_after` is sent verbatim as `Retry-After`.
    Status {
        /// HTTP status code to return.
        status: u16,
        /// How many requests this fault applies to.
        times: u32,
        /// Optional `Retry-After` header value, sent verbatim.
        retry_after: Option<String>,
        /// Optional body, sent verbatim instead of the source's error shape.
        body: Option<String>,
    },
    /// Respond normally, with [`super::Response::delay`] set to `by`.
    Delay {
        /// How long the transport should wait before answering.
        by: Duration,
        /// How many requests this fault applies to.
        times: u32,
    },
    /// Respond normally, but send the body one byte every `every` (headers at once): a
    /// response no between-bytes timeout ever ends.
    Trickle {
        /// The pause before each body byte.
        every: Duration,
        /// How many requests this fault applies to.
        times: u32,
    },
    /// HTTP 200 with the body `{not json`.
    MalformedBody {
        /// How many requests this fault applies to.
        times: u32,
    },
    /// HTTP 200 with an empty body.
    EmptyBody {
        /// How many requests this fault applies to.
        times: u32,
    },
    /// A valid success body padded (with a `"padding"` field) to exactly `bytes` bytes, when it
    /// is not already at least that long.
    HugeBody {
        /// Target body size in bytes.
        bytes: usize,
        /// How many successful responses this fault applies to.
        times: u32,
    },
    /// A successful token whose expiry is written in `format` (instead of the source's own).
    Expiry {
        /// The expiry encoding to use.
        format: ExpiryFormat,
        /// How many successful responses this fault applies to.
        times: u32,
    },
    /// A successful token with a lifetime of `secs` seconds instead of
    /// [`super::Config::token_lifetime_secs`].
    Lifetime {
        /// Token lifetime in seconds.
        secs: u64,
        /// How many successful responses this fault applies to.
        times: u32,
    },
    /// A non-JSON HTML page (as a proxy would send) with HTTP `status`.
    Html {
        /// HTTP status code to return.
        status: u16,
        /// How many requests this fault applies to.
        times: u32,
    },
}

/// How a successful response encodes the token's expiry: sources disagree (epoch seconds as a
/// number or a string, several date-time formats, or only a relative `expires_in`).
///
/// Every format encodes the real expiry instant (issue time + lifetime). When a format is forced
/// with [`Fault::Expiry`], the response carries only the field the format names: `expires_on`
/// (and no `expires_in`) for the absolute formats, `expires_in` alone for the relative ones, and
/// neither for [`ExpiryFormat::Missing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpiryFormat {
    /// `"expires_on":"1506484173"`
    EpochString,
    /// `"expires_on":1506484173`
    EpochNumber,
    /// `"expires_on":"2017-09-27T03:49:33Z"`
    Iso8601Z,
    /// `"expires_on":"2017-09-27T03:49:33.0000000+00:00"`
    Iso8601Fraction7,
    /// `"expires_on":"09/27/2017 03:49:33 +00:00"` (legacy App Service on Linux)
    AppService2017Linux,
    /// `"expires_on":"9/27/2017 3:49:33 AM +00:00"` (legacy App Service on Windows)
    AppService2017Windows,
    /// `"expires_on":"2017-09-27 03:49:33Z"` (Azure Automation hybrid worker)
    Automation,
    /// No `expires_on`; `"expires_in":"86399"` (string).
    ExpiresInOnly,
    /// No `expires_on`; `"expires_in":86399` (number).
    ExpiresInNumberOnly,
    /// Neither `expires_on` nor `expires_in`.
    Missing,
}

impl ExpiryFormat {
    /// Every format, for exhaustive tests.
    pub const ALL: [ExpiryFormat; 10] = [
        ExpiryFormat::EpochString,
        ExpiryFormat::EpochNumber,
        ExpiryFormat::Iso8601Z,
        ExpiryFormat::Iso8601Fraction7,
        ExpiryFormat::AppService2017Linux,
        ExpiryFormat::AppService2017Windows,
        ExpiryFormat::Automation,
        ExpiryFormat::ExpiresInOnly,
        ExpiryFormat::ExpiresInNumberOnly,
        ExpiryFormat::Missing,
    ];

    /// The field name and JSON value this format produces for a token expiring at `expires_on`
    /// (Unix seconds) with `lifetime` seconds left, or `None` for [`ExpiryFormat::Missing`].
    pub fn render(
        self,
        expires_on: u64,
        lifetime: u64,
    ) -> Option<(&'static str, serde_json::Value)> {
        use serde_json::Value;
        let (y, mo, d, h, mi, s) = utc_parts(expires_on);
        let text = |t: String| Some(("expires_on", Value::String(t)));
        match self {
            ExpiryFormat::EpochString => text(expires_on.to_string()),
            ExpiryFormat::EpochNumber => Some(("expires_on", Value::from(expires_on))),
            ExpiryFormat::Iso8601Z => text(format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")),
            ExpiryFormat::Iso8601Fraction7 => text(format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.0000000+00:00"
            )),
            ExpiryFormat::AppService2017Linux => text(format!(
                "{mo:02}/{d:02}/{y:04} {h:02}:{mi:02}:{s:02} +00:00"
            )),
            ExpiryFormat::AppService2017Windows => {
                let (h12, half) = match h {
                    0 => (12, "AM"),
                    1..=11 => (h, "AM"),
                    12 => (12, "PM"),
                    _ => (h - 12, "PM"),
                };
                text(format!("{mo}/{d}/{y} {h12}:{mi:02}:{s:02} {half} +00:00"))
            }
            ExpiryFormat::Automation => {
                text(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z"))
            }
            ExpiryFormat::ExpiresInOnly => {
                Some(("expires_in", Value::String(lifetime.to_string())))
            }
            ExpiryFormat::ExpiresInNumberOnly => Some(("expires_in", Value::from(lifetime))),
            ExpiryFormat::Missing => None,
        }
    }
}

/// What a fault does to the request at hand (internal classification).
pub(crate) enum Effect {
    /// Answer with this status/body instead of asking the source.
    Replace,
    /// Let the source answer, then delay the response.
    Delay(Duration),
    /// Let the source answer, then send the body one byte per interval.
    Trickle(Duration),
    /// Change the next successful response.
    Shape(Shape),
}

/// Changes a shaping fault makes to a successful token response.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Shape {
    /// Expiry encoding override.
    pub format: Option<ExpiryFormat>,
    /// Lifetime override, in seconds.
    pub lifetime: Option<u64>,
    /// Pad the body to this many bytes.
    pub pad_to: Option<usize>,
}

impl Fault {
    /// How many more requests this fault applies to.
    pub fn times(&self) -> u32 {
        match self {
            Fault::Status { times, .. }
            | Fault::Delay { times, .. }
            | Fault::Trickle { times, .. }
            | Fault::MalformedBody { times }
            | Fault::EmptyBody { times }
            | Fault::HugeBody { times, .. }
            | Fault::Expiry { times, .. }
            | Fault::Lifetime { times, .. }
            | Fault::Html { times, .. } => *times,
        }
    }

    /// Mutable access to the remaining count.
    pub(crate) fn times_mut(&mut self) -> &mut u32 {
        match self {
            Fault::Status { times, .. }
            | Fault::Delay { times, .. }
            | Fault::Trickle { times, .. }
            | Fault::MalformedBody { times }
            | Fault::EmptyBody { times }
            | Fault::HugeBody { times, .. }
            | Fault::Expiry { times, .. }
            | Fault::Lifetime { times, .. }
            | Fault::Html { times, .. } => times,
        }
    }

    /// Classifies the fault.
    pub(crate) fn effect(&self) -> Effect {
        match self {
            Fault::Status { .. }
            | Fault::Html { .. }
            | Fault::MalformedBody { .. }
            | Fault::EmptyBody { .. } => Effect::Replace,
            Fault::Delay { by, .. } => Effect::Delay(*by),
            Fault::Trickle { every, .. } => Effect::Trickle(*every),
            Fault::HugeBody { bytes, .. } => Effect::Shape(Shape {
                pad_to: Some(*bytes),
                ..Shape::default()
            }),
            Fault::Expiry { format, .. } => Effect::Shape(Shape {
                format: Some(*format),
                ..Shape::default()
            }),
            Fault::Lifetime { secs, .. } => Effect::Shape(Shape {
                lifetime: Some(*secs),
                ..Shape::default()
            }),
        }
    }
}

/// A proxy-style HTML error page for `status`.
pub(crate) fn html_page(status: u16) -> String {
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n\
         <center><h1>{status} {reason}</h1></center>\r\n<hr><center>emulated proxy</center>\r\n\
         </body>\r\n</html>\r\n"
    )
}

/// Splits Unix seconds into UTC `(year, month, day, hour, minute, second)`
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn utc_parts(epoch: u64) -> (u64, u64, u64, u64, u64, u64) {
    let (days, secs) = (epoch / 86_400, epoch % 86_400);
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, secs / 3_600, secs % 3_600 / 60, secs % 60)
}
