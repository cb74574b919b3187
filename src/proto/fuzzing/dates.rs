//! The `expiry` and `retry_after` targets: every date and number format a source sends, each
//! checked against an independent calendar (not the parsers' `days_from_civil`).

use serde_json::Value;

use super::Input;
use super::parsers::NOW;
use crate::proto::HttpResponse;
use crate::proto::expiry::{parse_expires_on, parse_seconds};
use crate::proto::retry::{RETRY_AFTER_CAP_MS, parse_http_date, retry_after_ms};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn month_days(y: u64, m: u64) -> u64 {
    [
        31,
        28 + u64::from(is_leap(y)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][(m - 1) as usize]
}

/// Days from 1970-01-01 to `y-m-d` (`y` ≥ 1970), by counting leap years.
fn days_since_epoch(y: u64, m: u64, d: u64) -> u64 {
    let leaps = |y: u64| y / 4 - y / 100 + y / 400;
    let before_year = 365 * (y - 1970) + leaps(y - 1) - leaps(1969);
    let before_month: u64 = (1..m).map(|k| month_days(y, k)).sum();
    before_year + before_month + d - 1
}

/// A civil date and time from fuzz bytes, mostly valid, sometimes one field off.
#[derive(Clone, Copy, Debug)]
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Civil {
    fn read(input: &mut Input<'_>) -> Self {
        Self {
            year: 1960 + u64::from(input.u16()) % 8100,
            month: u64::from(input.byte()) % 14,
            day: u64::from(input.byte()) % 33,
            hour: u64::from(input.byte()) % 25,
            minute: u64::from(input.byte()) % 61,
            second: u64::from(input.byte()) % 62,
        }
    }

    /// Seconds since the epoch of this local time at `offset` seconds east, when every field
    /// is valid and the instant is not before the epoch.
    fn epoch(&self, offset: i64) -> Option<u64> {
        let valid = (1970..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= month_days(self.year, self.month)
            && self.hour <= 23
            && self.minute <= 59
            && self.second <= 60;
        if !valid {
            return None;
        }
        let days = days_since_epoch(self.year, self.month, self.day);
        let local = days * 86_400 + self.hour * 3600 + self.minute * 60 + self.second;
        u64::try_from(i64::try_from(local).ok()? - offset).ok()
    }
}

/// Bytes: a civil date, a zone and a format (round trip through every `expires_on` format),
/// then free text parsed as an `expires_on` string and as JSON (`expires_on`, `expires_in`).
pub fn expiry(data: &[u8]) {
    let mut input = Input::new(data);
    let t = Civil::read(&mut input);
    let format = input.byte();
    let (oh, om) = (u64::from(input.byte()) % 25, u64::from(input.byte() % 61));
    let negative = format & 0x80 != 0;
    let fraction = usize::from(input.byte() % 11);
    let sign = if negative { '-' } else { '+' };
    let zone_ok = oh <= 23 && om <= 59;
    let offset = (oh * 3600 + om * 60) as i64 * if negative { -1 } else { 1 };
    let frac = "1234567890".get(..fraction).unwrap_or_default();
    let dot = if fraction == 0 { "" } else { "." };
    let Civil {
        year: y,
        month: mo,
        day: d,
        hour: h,
        minute: mi,
        second: s,
    } = t;
    let (text, expected) = match (format & 0x7f) % 6 {
        0 => (
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{dot}{frac}Z"),
            (fraction <= 9).then(|| t.epoch(0)).flatten(),
        ),
        1 => (
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{dot}{frac}{sign}{oh:02}:{om:02}"),
            (fraction <= 9 && zone_ok)
                .then(|| t.epoch(offset))
                .flatten(),
        ),
        2 => (
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
            t.epoch(0),
        ),
        3 => (
            format!("{mo:02}/{d:02}/{y:04} {h:02}:{mi:02}:{s:02} {sign}{oh:02}:{om:02}"),
            zone_ok.then(|| t.epoch(offset)).flatten(),
        ),
        4 => {
            // Windows: no padding, 12-hour clock.
            let (h12, half) = match h {
                0 => (12, "AM"),
                1..=11 => (h, "AM"),
                12 => (12, "PM"),
                13..=23 => (h - 12, "PM"),
                // An invalid hour stays invalid on the 12-hour clock.
                _ => (13, "PM"),
            };
            (
                format!("{mo}/{d}/{y:04} {h12}:{mi:02}:{s:02} {half} {sign}{oh:02}:{om:02}"),
                (zone_ok && h12 <= 12).then(|| t.epoch(offset)).flatten(),
            )
        }
        _ => (
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z"),
            t.epoch(0),
        ),
    };
    let parsed = parse_expires_on(&Value::String(text.clone()));
    // Years past 9999 print with five digits: no format takes them.
    let expected = if y > 9999 { None } else { expected };
    assert_eq!(parsed, expected, "expires_on {text:?}");

    let rest = input.rest();
    let text = String::from_utf8_lossy(rest);
    if let Some(secs) = parse_expires_on(&Value::String(text.to_string())) {
        let digits = text.trim();
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let v: u64 = digits.parse().unwrap_or(u64::MAX);
            let want = if v > 100_000_000_000 { v / 1000 } else { v };
            assert_eq!(secs, want, "epoch {digits:?}");
        } else {
            assert!(
                secs <= 253_402_300_800 + 86_400,
                "a date past 9999: {text:?}"
            );
        }
    }
    if let Ok(value) = serde_json::from_slice::<Value>(rest) {
        let _ = parse_expires_on(&value);
        if let (Some(secs), Some(n)) = (parse_seconds(&value), value.as_u64()) {
            assert_eq!(secs, n, "expires_in {value}");
        }
    }
}

/// Bytes: which header, an IMF-fixdate's fields (round trip), then free text as that header's
/// value. The wait is never above the 60 s cap.
pub fn retry_after(data: &[u8]) {
    let mut input = Input::new(data);
    let name = input.pick(&[
        "Retry-After",
        "retry-after",
        "retry-after-ms",
        "x-ms-retry-after-ms",
    ]);
    let t = Civil::read(&mut input);
    let month = input.byte();
    let Civil {
        year: y,
        month: _,
        day: d,
        hour: h,
        minute: mi,
        second: s,
    } = t;
    let known = usize::from(month) % 13;
    let month_name = MONTHS.get(known).copied().unwrap_or("Foo");
    let date = format!("Sun, {d:02} {month_name} {y:04} {h:02}:{mi:02}:{s:02} GMT");
    let civil = Civil {
        month: known as u64 + 1,
        ..t
    };
    // RFC 9110 days run 1–31 whatever the month (the parser does not check the month's length).
    let lenient = Civil {
        day: d.min(month_days(y.max(1970), civil.month.min(12))),
        ..civil
    };
    let expected = if known < 12 && (1..=31).contains(&d) && y <= 9999 {
        // A day past the month's end rolls into the next month.
        lenient.epoch(0).map(|e| e + (d - lenient.day) * 86_400)
    } else {
        None
    };
    assert_eq!(parse_http_date(&date), expected, "HTTP-date {date:?}");

    let value = String::from_utf8_lossy(input.rest()).into_owned();
    let now = NOW;
    let answer = |value: &str| HttpResponse {
        status: 503,
        headers: vec![(name.into(), value.into())],
        body: Vec::new(),
    };
    let wait = retry_after_ms(&answer(&value), now);
    assert!(wait.is_none_or(|w| w <= RETRY_AFTER_CAP_MS), "past the cap");
    if let Ok(n) = value.trim().parse::<u64>() {
        let unit = if name.ends_with("-ms") { 1 } else { 1000 };
        assert_eq!(wait, Some(n.saturating_mul(unit).min(RETRY_AFTER_CAP_MS)));
    }
    if !name.ends_with("-ms") {
        let at = expected.map(|e| now.millis_until(crate::proto::UnixMillis::from_secs(e)));
        assert_eq!(
            retry_after_ms(&answer(&date), now),
            at.map(|w| w.min(RETRY_AFTER_CAP_MS)),
            "Retry-After {date:?}"
        );
    }
}
