// About 400 lines: every expiry format seen in the wild, its parser and its tests together.
//! Every `expires_on` format seen in the wild, and `expires_in` / `refresh_in` seconds.
//!
//! # Formats
//!
//! | `expires_on` value | where it was seen | msal-node | MSAL Go | MSAL Python | azmi |
//! |---|---|---|---|---|---|
//! | JSON number `1565244611` | Service Fabric docs, Azure ML | yes | yes | yes | yes |
//! | digit string `"1565244611"` | IMDS, App Service 2019, Arc, Cloud Shell | yes | yes | yes | yes |
//! | ISO 8601 `"2024-10-18T19:51:37.0000000+00:00"`, `"…Z"`, any fraction | reported against MSAL .NET (AzureAD/microsoft-authentication-library-for-dotnet#4963) | only the exact `Date#toISOString` form | yes | no | yes |
//! | `"06/20/2019 02:57:58 +00:00"` | App Service 2017 on Linux | no | no | no | yes |
//! | `"1/16/2020 5:24:12 AM +00:00"` (no padding, 12-hour clock) | App Service 2017 on Windows | no | no | no | yes |
//! | `"2021-07-02 08:00:34Z"` | Azure Automation hybrid worker | no | no | no | yes |
//! | no zone (`"2019-06-20 02:57:58"`) | — | no | yes (as UTC) | no | yes, as UTC |
//! | epoch in milliseconds (> 10^11) | — (defensive) | — | — | — | divided by 1000 |
//!
//! Parse order ([`parse_expires_on`], used by [`crate::proto::response::parse_token`]): a JSON
//! number (seconds), an all-digit string, ISO 8601 / RFC 3339 with `T` or a space, any
//! fraction length and `Z`, an offset or no zone, then the US-style date with optional
//! `AM`/`PM` and offset. Anything else is "unknown": the response parser then falls back to
//! `expires_in` (a number or digit string, counted from when the response was *received*), and
//! if that is missing too the response is invalid.
//!
//! Why this matters: msal-node turns any `expires_on` it cannot read (and a missing one) into
//! a token that expired when it was issued, and never reads `expires_in`; the call succeeds,
//! the token is already expired, and every later call fetches again — a request storm. MSAL
//! Python raises a bare `ValueError` on the date strings. azmi accepts every observed format
//! and never returns a token whose expiry it does not know.
//!
//! A date crate would parse one format per call and add tens of KB to the component; these
//! five shapes are fixed, so a small exact parser is cheaper and easier to pin with tests.

use serde_json::Value;

/// Epoch values above this are milliseconds, not seconds (year 5138 in seconds; defensive).
const MILLIS_THRESHOLD: u64 = 100_000_000_000;

/// `expires_on` in unix seconds, or `None` when absent or not in a known format.
pub(super) fn parse_expires_on(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(normalize_epoch),
        Value::String(s) => parse_expiry_str(s.trim()),
        _ => None,
    }
}

/// `expires_in` / `refresh_in` as seconds (a JSON number or an all-digit string).
pub(super) fn parse_seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) if is_digits(s.trim()) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_expiry_str(s: &str) -> Option<u64> {
    if is_digits(s) {
        return s.parse().ok().map(normalize_epoch);
    }
    parse_iso(s).or_else(|| parse_us_date(s))
}

fn normalize_epoch(v: u64) -> u64 {
    if v > MILLIS_THRESHOLD { v / 1000 } else { v }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A tiny cursor over ASCII text.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            i: 0,
        }
    }

    /// Reads `min..=max` digits.
    fn digits(&mut self, min: usize, max: usize) -> Option<u64> {
        let start = self.i;
        while self.i < self.s.len() && self.i - start < max && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        let mut v = 0u64;
        for &b in &self.s[start..self.i] {
            v = v * 10 + u64::from(b - b'0');
        }
        Some(v)
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_any(&mut self, set: &[u8]) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        set.contains(&c).then(|| {
            self.i += 1;
            c
        })
    }

    fn skip_spaces(&mut self) {
        while self.eat(b' ') {}
    }

    fn rest(&self) -> &'a [u8] {
        &self.s[self.i..]
    }

    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}

/// `yyyy-MM-dd[T| ]HH:mm:ss[.f…][Z|±HH:MM]`; no zone means UTC (as MSAL Go reads it).
fn parse_iso(s: &str) -> Option<u64> {
    let mut c = Cursor::new(s);
    let year = c.digits(4, 4)?;
    c.eat(b'-').then_some(())?;
    let month = c.digits(2, 2)?;
    c.eat(b'-').then_some(())?;
    let day = c.digits(2, 2)?;
    c.eat_any(b"Tt ")?;
    let (h, m, sec) = time_of_day(&mut c, 2)?;
    if c.eat(b'.') {
        c.digits(1, 9)?;
    }
    let offset = zone(&mut c)?;
    c.done().then_some(())?;
    to_epoch(year, month, day, h, m, sec, offset)
}

/// `M/d/yyyy H:mm:ss[ AM|PM][ +00:00]`: App Service 2017 on Linux (zero-padded, 24-hour) and
/// Windows (no padding, 12-hour with `AM`/`PM`).
fn parse_us_date(s: &str) -> Option<u64> {
    let mut c = Cursor::new(s);
    let month = c.digits(1, 2)?;
    c.eat(b'/').then_some(())?;
    let day = c.digits(1, 2)?;
    c.eat(b'/').then_some(())?;
    let year = c.digits(4, 4)?;
    c.eat(b' ').then_some(())?;
    let (mut h, m, sec) = time_of_day(&mut c, 1)?;
    c.skip_spaces();
    let rest = c.rest();
    if rest.len() >= 2
        && (rest[..2].eq_ignore_ascii_case(b"AM") || rest[..2].eq_ignore_ascii_case(b"PM"))
    {
        let pm = rest[0].eq_ignore_ascii_case(&b'P');
        if !(1..=12).contains(&h) {
            return None;
        }
        h = match (pm, h) {
            (false, 12) => 0,
            (true, 12) => 12,
            (true, h) => h + 12,
            (false, h) => h,
        };
        c.i += 2;
        c.skip_spaces();
    }
    let offset = zone(&mut c)?;
    c.done().then_some(())?;
    to_epoch(year, month, day, h, m, sec, offset)
}

fn time_of_day(c: &mut Cursor<'_>, hour_min_digits: usize) -> Option<(u64, u64, u64)> {
    let h = c.digits(hour_min_digits, 2)?;
    c.eat(b':').then_some(())?;
    let m = c.digits(2, 2)?;
    c.eat(b':').then_some(())?;
    let sec = c.digits(2, 2)?;
    Some((h, m, sec))
}

/// Zone suffix in seconds east of UTC: nothing, `Z`, or `±HH:MM` / `±HHMM`.
fn zone(c: &mut Cursor<'_>) -> Option<i64> {
    if c.done() {
        return Some(0);
    }
    if c.eat_any(b"Zz").is_some() {
        return Some(0);
    }
    let sign = match c.eat_any(b"+-")? {
        b'+' => 1,
        _ => -1,
    };
    let hh = c.digits(2, 2)?;
    c.eat(b':');
    let mm = c.digits(2, 2)?;
    if hh > 23 || mm > 59 {
        return None;
    }
    Some(sign * (hh * 3600 + mm * 60) as i64)
}

fn to_epoch(year: u64, month: u64, day: u64, h: u64, m: u64, s: u64, offset: i64) -> Option<u64> {
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || h > 23
        || m > 59
        || s > 60
    {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let local = days * 86_400 + (h * 3600 + m * 60 + s) as i64;
    u64::try_from(local - offset).ok()
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // 2019-06-20T02:57:58Z
    const LINUX_2017: u64 = 1_560_999_478;

    #[test]
    fn epoch_number_and_string() {
        assert_eq!(parse_expires_on(&json!(1565244611)), Some(1565244611));
        assert_eq!(parse_expires_on(&json!("1565244611")), Some(1565244611));
        assert_eq!(parse_expires_on(&json!(1565244611.0)), Some(1565244611));
    }

    #[test]
    fn epoch_milliseconds_are_scaled() {
        assert_eq!(parse_expires_on(&json!(1565244611000u64)), Some(1565244611));
    }

    #[test]
    fn iso_forms() {
        assert_eq!(
            parse_expires_on(&json!("2019-06-20T02:57:58Z")),
            Some(LINUX_2017)
        );
        assert_eq!(
            parse_expires_on(&json!("2019-06-20T02:57:58.000Z")),
            Some(LINUX_2017)
        );
        assert_eq!(
            parse_expires_on(&json!("2019-06-20T02:57:58.0000000+00:00")),
            Some(LINUX_2017)
        );
        assert_eq!(
            parse_expires_on(&json!("2019-06-20T04:57:58+02:00")),
            Some(LINUX_2017)
        );
        assert_eq!(
            parse_expires_on(&json!("2019-06-20 02:57:58Z")),
            Some(LINUX_2017)
        );
        assert_eq!(
            parse_expires_on(&json!("2019-06-20 02:57:58")),
            Some(LINUX_2017)
        );
    }

    #[test]
    fn app_service_2017_linux_and_windows() {
        assert_eq!(
            parse_expires_on(&json!("06/20/2019 02:57:58 +00:00")),
            Some(LINUX_2017)
        );
        // 2020-01-16T05:24:12Z
        assert_eq!(
            parse_expires_on(&json!("1/16/2020 5:24:12 AM +00:00")),
            Some(1_579_152_252)
        );
        assert_eq!(
            parse_expires_on(&json!("1/16/2020 5:24:12 PM +00:00")),
            Some(1_579_152_252 + 12 * 3600)
        );
        assert_eq!(
            parse_expires_on(&json!("1/16/2020 12:24:12 AM +00:00")),
            Some(1_579_152_252 - 5 * 3600)
        );
        assert_eq!(
            parse_expires_on(&json!("06/20/2019 02:57:58")),
            Some(LINUX_2017)
        );
    }

    #[test]
    fn negative_utc_offsets_are_west_of_utc() {
        // 02:57:58Z written two, four and five and a half hours west of UTC.
        for west in [
            "2019-06-20T00:57:58-02:00",
            "2019-06-19T21:27:58-0530",
            "06/19/2019 22:57:58 -04:00",
        ] {
            assert_eq!(parse_expires_on(&json!(west)), Some(LINUX_2017), "{west}");
        }
    }

    #[test]
    fn twelve_pm_is_noon() {
        // 2020-01-16T12:24:12Z, then the same wall time seven hours west of UTC.
        let noon = 1_579_152_252 + 7 * 3600;
        assert_eq!(
            parse_expires_on(&json!("1/16/2020 12:24:12 PM +00:00")),
            Some(noon)
        );
        assert_eq!(
            parse_expires_on(&json!("1/16/2020 12:24:12 PM -07:00")),
            Some(noon + 7 * 3600)
        );
    }

    #[test]
    fn automation_hybrid_worker() {
        // "2021-07-02 08:00:34Z" (Azure/azure-sdk-for-python#19641)
        assert_eq!(
            parse_expires_on(&json!("2021-07-02 08:00:34Z")),
            Some(1_625_212_834)
        );
    }

    #[test]
    fn garbage_is_rejected_not_zero() {
        for bad in [
            "",
            "soon",
            "2019-13-01T00:00:00Z",
            "2019-02-30T00:00:00Z",
            "13/1/2020 1:00:00 AM",
            "1/1/2020 13:00:00 PM",
            "2019-06-20T02:57:58+25:00",
            "-5",
        ] {
            assert_eq!(parse_expires_on(&json!(bad)), None, "{bad}");
        }
        assert_eq!(parse_expires_on(&json!(null)), None);
        assert_eq!(parse_expires_on(&json!(-3)), None);
        assert_eq!(parse_expires_on(&json!(true)), None);
    }

    #[test]
    fn seconds_fields() {
        assert_eq!(parse_seconds(&json!(3599)), Some(3599));
        assert_eq!(parse_seconds(&json!("3599")), Some(3599));
        assert_eq!(parse_seconds(&json!("35x")), None);
        assert_eq!(parse_seconds(&json!(null)), None);
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
