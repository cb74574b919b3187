//! A root context's state for every scope of its configuration: one [`TokenRoot`] per
//! distinct scope (its own cache, fetch and single flight), and the routing of each request to
//! one of them by its `:authority` ([`FilterConfig::scope_for`]). With a single `"scope"` (the
//! original configuration) there is one root and no routing: the request's authority is not
//! even read. Host-call free, like [`TokenRoot`].

use super::config::{FilterConfig, Unmapped};
use super::token_root::{Dispatch, Effects, Level, LocalReply, RequestStep, TokenRoot, Verdict};
use super::verdict::failure_details;
use crate::drive::SharedStore;
use crate::proto::{
    EnvSnapshot, Error, HttpResponse, TransportError, UnixMillis, resource_from_scope, splitmix64,
};

/// How many distinct unmapped authorities get their own warning (then they are only counted).
const UNMAPPED_WARNINGS: usize = 32;

/// The filter's state in one root context.
#[derive(Debug)]
pub struct Filter {
    config: FilterConfig,
    /// One per distinct scope, in the order the configuration names them (default first).
    roots: Vec<TokenRoot>,
    /// The request id every refused unmapped request carries (logged with its authority).
    unmapped_id: String,
    /// Authorities already warned about.
    unmapped_seen: Vec<String>,
}

impl Filter {
    /// The state for `config` (already validated) with the VM's variables `env`.
    pub fn new(config: FilterConfig, env: EnvSnapshot, now: UnixMillis) -> Self {
        let mut scopes: Vec<String> = config.scope.iter().cloned().collect();
        for scope in config.upstreams.iter().flat_map(|map| map.values()) {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        let roots = scopes
            .into_iter()
            .map(|scope| TokenRoot::for_scope(config.clone(), scope, env.clone(), now))
            .collect();
        Self {
            config,
            roots,
            unmapped_id: format!("{:016x}", splitmix64(now.0 ^ 0x756e_6d61_7070_6564)),
            unmapped_seen: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FilterConfig {
        &self.config
    }

    /// The per-scope states.
    pub fn roots(&self) -> &[TokenRoot] {
        &self.roots
    }

    /// Whether requests are routed by their `:authority` (read it only then).
    pub fn routes(&self) -> bool {
        self.config.upstreams.is_some()
    }

    /// The lines to log when the filter starts: each scope's, then the routing.
    pub fn startup_log(&self) -> Vec<(Level, String)> {
        let mut lines: Vec<_> = self.roots.iter().map(TokenRoot::startup_log).collect();
        if let Some(map) = &self.config.upstreams {
            let routes: Vec<String> = map.iter().map(|(a, s)| format!("{a} -> {s}")).collect();
            let other = match (&self.config.scope, self.config.unmapped.unwrap_or_default()) {
                (Some(scope), _) => format!("every other upstream -> {scope}"),
                (None, Unmapped::Pass) => "every other upstream passes untouched".into(),
                (None, Unmapped::Deny) => format!(
                    "every other upstream gets a 503 with request_id {}",
                    self.unmapped_id
                ),
            };
            lines.push((
                Level::Info,
                format!("upstreams: {}; {other}", routes.join(", ")),
            ));
        }
        lines
    }

    /// A new request for `authority` (read when [`Filter::routes`]): its scope's step, or the
    /// unmapped verdict.
    pub fn on_request(
        &mut self,
        now: UnixMillis,
        context_id: u32,
        authority: Option<&str>,
        store: &mut impl SharedStore,
    ) -> RequestStep {
        let index = match authority {
            _ if self.roots.len() == 1 && self.config.upstreams.is_none() => Some(0),
            Some(authority) => self.index_for(authority),
            None => self.config.scope.as_ref().map(|_| 0),
        };
        match index.and_then(|i| self.roots.get_mut(i)) {
            Some(root) => root.on_request(now, context_id, store),
            None => self.unmapped(authority.unwrap_or("")),
        }
    }

    fn index_for(&self, authority: &str) -> Option<usize> {
        let scope = self.config.scope_for(authority)?;
        self.roots.iter().position(|root| root.scope() == scope)
    }

    /// A request `upstreams` does not map, with no default scope.
    fn unmapped(&mut self, authority: &str) -> RequestStep {
        let verdict = match self.config.unmapped.unwrap_or_default() {
            Unmapped::Pass => Verdict::PassThrough,
            Unmapped::Deny => {
                let error = unmapped_error(authority);
                Verdict::Reply(LocalReply::for_failure(&error, &self.unmapped_id))
            }
        };
        let first = self.unmapped_seen.len() < UNMAPPED_WARNINGS
            && !self.unmapped_seen.iter().any(|seen| seen == authority);
        let log = first.then(|| {
            self.unmapped_seen.push(authority.to_string());
            let line = match &verdict {
                Verdict::PassThrough => format!(
                    "{}; requests for it pass untouched (unmapped: pass)",
                    unmapped_error(authority).message()
                ),
                _ => format!(
                    "requests for an unmapped upstream get a 503; {}",
                    failure_details(&unmapped_error(authority), &self.unmapped_id)
                ),
            };
            let level = match verdict {
                Verdict::PassThrough => Level::Info,
                _ => Level::Warn,
            };
            (level, line)
        });
        RequestStep {
            verdict,
            wake: false,
            log,
        }
    }

    /// Whether stream `context_id` waits for a token.
    pub fn is_waiting(&self, context_id: u32) -> bool {
        self.roots.iter().any(|root| root.is_waiting(context_id))
    }

    /// Stream `context_id` ended.
    pub fn on_stream_done(&mut self, context_id: u32) {
        for root in &mut self.roots {
            root.on_stream_done(context_id);
        }
    }

    /// The root context's tick: every scope's ([`TokenRoot::on_tick`]).
    pub fn on_tick(
        &mut self,
        now: UnixMillis,
        dispatch: &mut impl Dispatch,
        store: &mut impl SharedStore,
    ) -> Effects {
        let mut effects = Effects::default();
        for root in &mut self.roots {
            effects.append(root.on_tick(now, dispatch, store));
        }
        effects
    }

    /// The answer to call `call`: the scope whose fetch sent it takes it (call ids are the
    /// host's, unique per root context).
    pub fn on_response(
        &mut self,
        now: UnixMillis,
        call: u32,
        result: Result<HttpResponse, TransportError>,
        dispatch: &mut impl Dispatch,
        store: &mut impl SharedStore,
    ) -> Effects {
        match self.roots.iter_mut().find(|root| root.awaits(call)) {
            Some(root) => root.on_response(now, call, result, dispatch, store),
            None => Effects::default(),
        }
    }

    /// The next tick any scope wants, in milliseconds from `now`.
    pub fn next_tick_ms(&self, now: UnixMillis) -> Option<u64> {
        self.roots
            .iter()
            .filter_map(|root| root.next_tick_ms(now))
            .min()
    }

    /// Seconds until each scope's cached token expires (`None`: no token), in root order.
    pub fn expiries(&mut self, now: UnixMillis) -> impl Iterator<Item = Option<u64>> + '_ {
        self.roots.iter_mut().map(move |root| root.expires_in(now))
    }
}

/// Why a request for `authority` has no scope.
fn unmapped_error(authority: &str) -> Error {
    Error::invalid_argument(format!(
        "no scope is configured for the upstream authority {authority:?}; add it to the azmi filter's \"upstreams\", or set a default \"scope\""
    ))
}

/// The label of `scope` in stat names: its resource's host, with every character but ASCII
/// letters and digits as `_` (`https://vault.azure.net/.default` → `vault_azure_net`).
pub fn stat_label(scope: &str) -> String {
    let resource = resource_from_scope(scope).unwrap_or(scope);
    let host = resource
        .split_once("://")
        .map_or(resource, |(_, rest)| rest)
        .trim_end_matches('/');
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}
