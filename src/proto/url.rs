//! Endpoint URLs from the environment, parsed strictly, and RFC 3986 query encoding.
//!
//! The `url` crate would pull IDNA tables into a component whose budget is 150 KB, and
//! managed-identity endpoints are plain `http(s)://host[:port]/path` values; this parser
//! accepts exactly that and refuses user info, fragments and other schemes.

use super::http::Scheme;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left unencoded in query values: RFC 3986 unreserved. Resource URLs and ARM
/// resource ids (`/subscriptions/…`) are thus always encoded, whatever they contain.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A parsed endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// `host[:port]`, lower-cased host.
    pub authority: String,
    /// Path, starting with `/`, without query.
    pub path: String,
    /// Existing query without `?` (kept, our parameters are appended).
    pub query: String,
}

impl Endpoint {
    /// Parses `http(s)://authority[/path][?query]`; the reason on failure is for messages.
    pub fn parse(raw: &str) -> Result<Endpoint, &'static str> {
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(raw, "http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(raw, "https://") {
            (Scheme::Https, rest)
        } else {
            return Err("it must start with http:// or https://");
        };
        if rest.contains('#') {
            return Err("it must not contain a fragment (#)");
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("it must not contain whitespace");
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if authority.is_empty() {
            return Err("it has no host");
        }
        if authority.contains('@') {
            return Err("it must not contain user info (@)");
        }
        check_host_and_port(authority)?;
        let rest = &rest[authority_end..];
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, query),
            None => (rest, ""),
        };
        Ok(Endpoint {
            scheme,
            authority: authority.to_ascii_lowercase(),
            path: if path.is_empty() { "/" } else { path }.to_string(),
            query: query.to_string(),
        })
    }

    /// The host without port or IPv6 brackets.
    pub fn host(&self) -> &str {
        let a = self.authority.as_str();
        if let Some(rest) = a.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        a.rsplit_once(':').map_or(a, |(h, _)| h)
    }

    /// Path and query with `params` appended, values percent-encoded.
    pub fn path_and_query(&self, params: &[(&str, &str)]) -> String {
        let mut out = self.path.clone();
        let mut first = true;
        if !self.query.is_empty() {
            out.push('?');
            out.push_str(&self.query);
            first = false;
        }
        for (name, value) in params {
            out.push(if first { '?' } else { '&' });
            first = false;
            out.push_str(name);
            out.push('=');
            out.extend(utf8_percent_encode(value, QUERY_VALUE));
        }
        out
    }
}

/// `host[:port]` or `[v6][:port]`: a non-empty host and, if a `:` is given, a decimal port
/// (the host adapter would otherwise fail late with a transport error, read as "unavailable").
fn check_host_and_port(authority: &str) -> Result<(), &'static str> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or("it has an unterminated IPv6 address")?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or("it has text after the IPv6 address")?,
                ),
            };
            (host, port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("it has no host");
    }
    let valid_port = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    };
    if port.is_some_and(|p| !valid_port(p)) {
        return Err("its port is not a number from 0 to 65535");
    }
    Ok(())
}

/// `value` percent-encoded for a query (RFC 3986 unreserved kept).
pub(super) fn encode_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).collect()
}

/// `application/x-www-form-urlencoded` body from `fields` (RFC 3986 unreserved kept).
pub(super) fn form_body(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    out.into_bytes()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}
