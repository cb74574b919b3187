// Over 350 lines on purpose: the one scripted world every core test runs in (replies,
// files, virtual clock, request assertions) and the tests that keep the harness honest.
//! A scripted, deterministic world for the core (quinn-proto `tests/util.rs`, ureq-proto style).
//!
//! A [`Scenario`] holds the environment, host facts, selector, scope, a virtual clock, the
//! files the host can read, and one [`ManagedIdentity`] that survives across
//! [`Scenario::run`]s (so the cache can be tested). Each request the core sends pops the next
//! [`Scripted`] reply; each file it asks for is looked up in the scripted files (a file nobody
//! scripted fails the test) and recorded with its [`FileRead`] limits. The clock only moves
//! when the test says so, when a reply "takes" time, or when the loop sleeps until a deadline.

use std::collections::{BTreeMap, VecDeque};

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::drive::{self, Io};
use crate::proto::{
    AccessToken, Acquisition, EnvSnapshot, Error, FileError, FileErrorKind, FileRead, HostFacts,
    HttpRequest, HttpResponse, IdentitySelector, ManagedIdentity, Method, Scheme, Start,
    TokenRequest, TransportError, TransportErrorKind, UnixMillis,
};

/// Where every scenario's clock starts: 2025-06-15T15:06:40Z, a whole second.
pub(super) const T0: UnixMillis = UnixMillis(1_750_000_000_000);

/// [`T0`] in unix seconds.
pub(super) const T0_SECS: u64 = T0.0 / 1000;

/// The App Service secret used by every scenario that needs one.
pub(super) const SECRET: &str = "s3cr3t-identity-header-value";

/// A JWT-looking token value that must never show up in messages or `Debug` output.
pub(super) const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-payload.signature";

/// The default App Service endpoint of [`Scenario::app_service`].
pub(super) const APP_SERVICE_ENDPOINT: &str = "http://127.0.0.1:41564/msi/token";

/// `MSI_ENDPOINT` of [`Scenario::azure_ml`] and [`Scenario::app_service_2017`].
pub(super) const MSI_ENDPOINT: &str = "http://127.0.0.1:46808/MSI/auth";

/// Azure ML's `DEFAULT_IDENTITY_CLIENT_ID` in [`Scenario::azure_ml`].
pub(super) const ML_DEFAULT_CLIENT: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

/// `MSI_ENDPOINT` of [`Scenario::cloud_shell`].
pub(super) const CLOUD_SHELL_ENDPOINT: &str = "http://localhost:50342/oauth2/token";

/// `IDENTITY_ENDPOINT` of [`Scenario::arc`].
pub(super) const ARC_ENDPOINT: &str = "http://localhost:40342/metadata/identity/oauth2/token";

/// The key file [`arc_challenge`] names.
pub(super) const ARC_KEY_PATH: &str = "/var/opt/azcmagent/tokens/x.key";

/// The contents of [`ARC_KEY_PATH`] in [`Scenario::arc`]: a secret.
pub(super) const ARC_KEY: &str = "arc-one-time-key-6f1d2c3b4a5e";

/// `IDENTITY_ENDPOINT` of [`Scenario::service_fabric`].
pub(super) const SF_ENDPOINT: &str = "https://10.0.0.4:2377/metadata/identity/oauth2/token";

/// `IDENTITY_SERVER_THUMBPRINT` of [`Scenario::service_fabric`].
pub(super) const THUMBPRINT: &str = "0123456789ABCDEF0123456789ABCDEF01234567";

/// `AZURE_FEDERATED_TOKEN_FILE` of [`Scenario::workload_identity`].
pub(super) const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";

/// `AZURE_TENANT_ID` of [`Scenario::workload_identity`].
pub(super) const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// `AZURE_CLIENT_ID` of [`Scenario::workload_identity`].
pub(super) const WORKLOAD_CLIENT: &str = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";

/// The federated token in [`TOKEN_FILE`] (the client assertion): a secret.
pub(super) const ASSERTION: &str =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.federated-assertion-payload.sig";

/// What the fake host answers to one request.
#[derive(Clone, Debug)]
pub(super) enum Reply {
    /// An HTTP response.
    Response(HttpResponse),
    /// No response: the transport failed.
    Transport(TransportError),
    /// No response ever: the fake host waits the request's whole timeout (`total_ms`, as a
    /// host that enforces the timeouts it is handed does) and reports a timeout.
    Hang,
}

/// One scripted reply and how much virtual time it takes to arrive.
#[derive(Clone, Debug)]
pub(super) struct Scripted {
    reply: Reply,
    takes_ms: u64,
}

impl Scripted {
    /// The same reply, arriving `ms` milliseconds of virtual time after the request was sent.
    pub(super) fn taking(mut self, ms: u64) -> Self {
        self.takes_ms = ms;
        self
    }

    /// The same response with one more header.
    #[track_caller]
    pub(super) fn header(mut self, name: &str, value: &str) -> Self {
        match &mut self.reply {
            Reply::Response(response) => response.headers.push((name.into(), value.into())),
            other => panic!("a transport failure has no headers: {other:?}"),
        }
        self
    }

    /// The HTTP response, for tests that feed an [`Acquisition`] by hand.
    #[track_caller]
    pub(super) fn into_response(self) -> HttpResponse {
        match self.reply {
            Reply::Response(response) => response,
            other => panic!("not a response: {other:?}"),
        }
    }
}

/// A response with `status` and a raw body.
pub(super) fn respond(status: u16, body: impl Into<Vec<u8>>) -> Scripted {
    Scripted {
        reply: Reply::Response(HttpResponse {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }),
        takes_ms: 0,
    }
}

/// A response with `status` and a JSON body.
pub(super) fn json(status: u16, body: Value) -> Scripted {
    respond(status, body.to_string())
}

/// A 200 in the IMDS shape (string numbers) carrying [`TOKEN`], expiring at `expires_on`.
pub(super) fn token_expiring_at(expires_on: u64) -> Scripted {
    json(
        200,
        serde_json::json!({
            "access_token": TOKEN,
            "refresh_token": "",
            "expires_in": "3599",
            "expires_on": expires_on.to_string(),
            "not_before": (expires_on - 3599).to_string(),
            "resource": "https://management.azure.com/",
            "token_type": "Bearer",
        }),
    )
}

/// Arc's challenge: 401 with `WWW-Authenticate: <www_authenticate>` (the agent's first answer).
pub(super) fn challenge(www_authenticate: &str) -> Scripted {
    json(
        401,
        serde_json::json!({"error": "unauthorized_client", "error_description": "Unauthorized"}),
    )
    .header("WWW-Authenticate", www_authenticate)
}

/// Arc's challenge naming [`ARC_KEY_PATH`].
pub(super) fn arc_challenge() -> Scripted {
    challenge(&format!("Basic realm={ARC_KEY_PATH}"))
}

/// A transport failure.
pub(super) fn transport(kind: TransportErrorKind, detail: &str) -> Scripted {
    Scripted {
        reply: Reply::Transport(TransportError::new(kind, detail)),
        takes_ms: 0,
    }
}

/// An endpoint that accepts the request and never answers (see [`Reply::Hang`]).
pub(super) fn hang() -> Scripted {
    Scripted {
        reply: Reply::Hang,
        takes_ms: 0,
    }
}

/// What the host scripts for one path: the contents, or why it cannot be read.
pub(super) type FileResult = Result<Vec<u8>, FileError>;

/// One thing the core asked the host to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// A request was sent.
    Send(HttpRequest),
    /// A file was read.
    Read(FileRead),
}

/// What one [`Scenario::run`] did.
#[derive(Debug)]
pub(super) struct Run {
    /// The result handed to the caller.
    pub result: Result<AccessToken, Error>,
    /// Every request the core sent, in order.
    pub requests: Vec<HttpRequest>,
    /// Every file the core asked for, in order, with its limits.
    pub file_reads: Vec<FileRead>,
    /// Requests and file reads, interleaved in the order they happened.
    pub events: Vec<Event>,
    /// Deadlines the loop slept until.
    pub sleeps: Vec<UnixMillis>,
    /// When each request in [`Run::requests`] was sent (virtual time).
    pub sent_at: Vec<UnixMillis>,
    /// Virtual time when the run started.
    pub started_at: UnixMillis,
    /// Virtual time when the run ended.
    pub finished_at: UnixMillis,
    /// The diagnostics lines the loop wrote, with their levels.
    pub logs: Vec<(crate::proto::Level, String)>,
}

impl Run {
    /// The token; panics with the error otherwise.
    #[track_caller]
    pub(super) fn token(&self) -> &AccessToken {
        match &self.result {
            Ok(token) => token,
            Err(e) => panic!("expected a token, got {:?}: {e}", e.kind()),
        }
    }

    /// The error; panics if a token came back.
    #[track_caller]
    pub(super) fn error(&self) -> &Error {
        match &self.result {
            Ok(token) => panic!("expected an error, got {token:?}"),
            Err(e) => e,
        }
    }

    /// The single request sent; panics unless exactly one was.
    #[track_caller]
    pub(super) fn request(&self) -> &HttpRequest {
        assert_eq!(self.requests.len(), 1, "requests: {:#?}", self.requests);
        &self.requests[0]
    }

    /// Panics unless nothing was sent.
    #[track_caller]
    pub(super) fn assert_nothing_sent(&self) {
        assert!(
            self.requests.is_empty(),
            "unexpected requests: {:#?}",
            self.requests
        );
    }

    /// Panics unless no file was read.
    #[track_caller]
    pub(super) fn assert_nothing_read(&self) {
        assert!(
            self.file_reads.is_empty(),
            "unexpected file reads: {:#?}",
            self.file_reads
        );
    }

    /// Panics unless the core neither sent a request nor read a file.
    #[track_caller]
    pub(super) fn assert_untouched(&self) {
        self.assert_nothing_sent();
        self.assert_nothing_read();
    }

    /// Milliseconds between consecutive requests (the retry gaps), in order.
    pub(super) fn gaps(&self) -> Vec<u64> {
        self.sent_at
            .windows(2)
            .map(|w| w[0].millis_until(w[1]))
            .collect()
    }

    /// The order of what happened, as `"send"` / `"read"`.
    pub(super) fn steps(&self) -> Vec<&'static str> {
        self.events
            .iter()
            .map(|e| match e {
                Event::Send(_) => "send",
                Event::Read(_) => "read",
            })
            .collect()
    }
}

/// The world one test runs in.
pub(super) struct Scenario {
    env: Vec<(String, String)>,
    facts: HostFacts,
    selector: IdentitySelector,
    scope: String,
    clock: UnixMillis,
    script: VecDeque<Scripted>,
    files: BTreeMap<String, FileResult>,
    identity: ManagedIdentity,
    runs: u8,
    /// Fixed jitter seed (random bytes 8..16), if any.
    seed: Option<u64>,
    /// Answers every request the script has no reply for (load tests).
    fallback: Option<Scripted>,
}

/// One call's options: the owned form of [`TokenRequest`] minus scope and selector.
#[derive(Clone, Debug, Default)]
pub(super) struct Call {
    /// [`TokenRequest::force_refresh`].
    pub force_refresh: bool,
    /// [`TokenRequest::claims`].
    pub claims: Option<String>,
    /// [`TokenRequest::client_capabilities`].
    pub capabilities: Vec<String>,
    /// [`TokenRequest::timeout_ms`].
    pub timeout_ms: Option<u64>,
    /// [`TokenRequest::probe`].
    pub probe: bool,
}

impl Call {
    /// The borrowed [`TokenRequest`] for `scope` and `selector` with these options.
    fn request<'a>(&'a self, scope: &'a str, selector: &'a IdentitySelector) -> TokenRequest<'a> {
        TokenRequest {
            force_refresh: self.force_refresh,
            claims: self.claims.as_deref(),
            client_capabilities: &self.capabilities,
            timeout_ms: self.timeout_ms,
            probe: self.probe,
            ..TokenRequest::new(scope, selector)
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

impl Scenario {
    /// No environment (so IMDS), system-assigned, `https://management.azure.com/.default`, at
    /// [`T0`].
    pub(super) fn new() -> Self {
        Self {
            env: Vec::new(),
            facts: HostFacts::default(),
            selector: IdentitySelector::SystemAssigned,
            scope: "https://management.azure.com/.default".into(),
            clock: T0,
            script: VecDeque::new(),
            files: BTreeMap::new(),
            identity: ManagedIdentity::new(),
            runs: 0,
            seed: None,
            fallback: None,
        }
    }

    /// IMDS: no managed-identity variables at all.
    pub(super) fn imds() -> Self {
        Self::new()
    }

    /// App Service at [`APP_SERVICE_ENDPOINT`] with [`SECRET`].
    pub(super) fn app_service() -> Self {
        Self::new()
            .env("IDENTITY_ENDPOINT", APP_SERVICE_ENDPOINT)
            .env("IDENTITY_HEADER", SECRET)
    }

    /// Azure ML at [`MSI_ENDPOINT`] with [`SECRET`] and [`ML_DEFAULT_CLIENT`].
    pub(super) fn azure_ml() -> Self {
        Self::app_service_2017().env("DEFAULT_IDENTITY_CLIENT_ID", ML_DEFAULT_CLIENT)
    }

    /// App Service 2017-09-01 at [`MSI_ENDPOINT`] with [`SECRET`].
    pub(super) fn app_service_2017() -> Self {
        Self::new()
            .env("MSI_ENDPOINT", MSI_ENDPOINT)
            .env("MSI_SECRET", SECRET)
    }

    /// Cloud Shell at [`CLOUD_SHELL_ENDPOINT`].
    pub(super) fn cloud_shell() -> Self {
        Self::new().env("MSI_ENDPOINT", CLOUD_SHELL_ENDPOINT)
    }

    /// Azure Arc by its variables, with [`ARC_KEY`] in [`ARC_KEY_PATH`].
    pub(super) fn arc() -> Self {
        Self::new()
            .env("IDENTITY_ENDPOINT", ARC_ENDPOINT)
            .env("IMDS_ENDPOINT", "http://localhost:40342")
            .file(ARC_KEY_PATH, ARC_KEY)
    }

    /// Service Fabric at [`SF_ENDPOINT`] with [`SECRET`] and [`THUMBPRINT`].
    pub(super) fn service_fabric() -> Self {
        Self::new()
            .env("IDENTITY_ENDPOINT", SF_ENDPOINT)
            .env("IDENTITY_HEADER", SECRET)
            .env("IDENTITY_SERVER_THUMBPRINT", THUMBPRINT)
    }

    /// Workload identity with the default authority and [`ASSERTION`] in [`TOKEN_FILE`].
    pub(super) fn workload_identity() -> Self {
        Self::new()
            .env("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE)
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", WORKLOAD_CLIENT)
            .file(TOKEN_FILE, ASSERTION)
    }

    /// Adds an environment variable (a later value for the same name wins).
    pub(super) fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Adds several environment variables.
    pub(super) fn envs(mut self, pairs: &[(&str, &str)]) -> Self {
        self.env
            .extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// The Arc agent binary is present.
    pub(super) fn arc_agent(mut self) -> Self {
        self.facts.arc_agent_present = true;
        self
    }

    /// The host cannot read files at all (proxy-wasm).
    pub(super) fn no_file_access(mut self) -> Self {
        self.facts.no_file_access = true;
        self
    }

    /// Starts the virtual clock at `t` instead of [`T0`] (for tokens dated in the past).
    pub(super) fn at(mut self, t: UnixMillis) -> Self {
        self.clock = t;
        self
    }

    /// The host can read `path`, which holds `contents` (builder form of [`Scenario::set_file`]).
    pub(super) fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.set_file(path, Ok(contents.into()));
        self
    }

    /// Reading `path` fails with `kind`.
    pub(super) fn file_error(mut self, path: &str, kind: FileErrorKind) -> Self {
        self.set_file(path, Err(FileError::new(kind, format!("{kind:?}: {path}"))));
        self
    }

    /// Sets (or replaces) what reading `path` yields, for later runs.
    pub(super) fn set_file(&mut self, path: &str, result: FileResult) {
        self.files.insert(path.into(), result);
    }

    /// Asks for this identity.
    pub(super) fn selector(mut self, selector: IdentitySelector) -> Self {
        self.selector = selector;
        self
    }

    /// Asks for this scope.
    pub(super) fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.into();
        self
    }

    /// Queues a reply (builder form of [`Scenario::push`]).
    pub(super) fn reply(mut self, reply: Scripted) -> Self {
        self.script.push_back(reply);
        self
    }

    /// Queues a reply for the next request.
    pub(super) fn push(&mut self, reply: Scripted) {
        self.script.push_back(reply);
    }

    /// Queues the same reply for the next `n` requests (a retried failure).
    pub(super) fn push_times(&mut self, reply: Scripted, n: usize) {
        for _ in 0..n {
            self.script.push_back(reply.clone());
        }
    }

    /// Builder form of [`Scenario::push_times`].
    pub(super) fn replies(mut self, reply: Scripted, n: usize) -> Self {
        self.push_times(reply, n);
        self
    }

    /// Answers every request that has no scripted reply with `reply`, for tests that make
    /// many calls and count the requests instead of scripting each one.
    pub(super) fn fallback(mut self, reply: Scripted) -> Self {
        self.fallback = Some(reply);
        self
    }

    /// Fixes the jitter seed (the host's random bytes 8..16) for every later fetch, so retry
    /// gaps are exact; request ids (all 16 bytes) still differ per fetch.
    pub(super) fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Changes the selector for later runs.
    pub(super) fn set_selector(&mut self, selector: IdentitySelector) {
        self.selector = selector;
    }

    /// Changes the scope for later runs.
    pub(super) fn set_scope(&mut self, scope: &str) {
        self.scope = scope.into();
    }

    /// Sets (or replaces) an environment variable for later runs.
    pub(super) fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.into(), value.into()));
    }

    /// Current virtual time.
    pub(super) fn now(&self) -> UnixMillis {
        self.clock
    }

    /// Moves the virtual clock forward.
    pub(super) fn advance(&mut self, ms: u64) {
        self.clock = self.clock.plus_millis(ms);
    }

    /// Moves the virtual clock to `t` (never backwards).
    pub(super) fn advance_to(&mut self, t: UnixMillis) {
        assert!(t >= self.clock, "the virtual clock never goes back");
        self.clock = t;
    }

    /// The credential, e.g. to count cached tokens.
    pub(super) fn identity(&mut self) -> &mut ManagedIdentity {
        &mut self.identity
    }

    /// The environment snapshot the core sees.
    pub(super) fn snapshot(&self) -> EnvSnapshot {
        EnvSnapshot::from_pairs(self.env.iter().cloned())
    }

    /// Deterministic, different per run: request ids must change between requests.
    fn next_random(&mut self) -> [u8; 16] {
        self.runs = self.runs.wrapping_add(1);
        random_for(self.runs, self.seed)
    }

    /// [`ManagedIdentity::check`] for this scenario's environment, facts, scope and selector.
    pub(super) fn check(&self) -> Result<(), Error> {
        ManagedIdentity::check(&self.snapshot(), self.facts, &self.scope, &self.selector)
    }

    /// Calls [`ManagedIdentity::start`] directly (for tests that step an [`Acquisition`]).
    pub(super) fn start(&mut self) -> Result<Start, Error> {
        self.start_with(&Call::default())
    }

    /// Calls [`ManagedIdentity::start`] directly with `call`'s options.
    pub(super) fn start_with(&mut self, call: &Call) -> Result<Start, Error> {
        let env = self.snapshot();
        let random = self.next_random();
        let request = call.request(&self.scope, &self.selector);
        self.identity
            .start(self.clock, &request, &env, self.facts, random)
    }

    /// Like [`Scenario::start`], but panics unless a fetch starts.
    #[track_caller]
    pub(super) fn start_fetch(&mut self) -> Acquisition {
        match self.start() {
            Ok(Start::Fetch(acquisition)) => *acquisition,
            Ok(Start::Cached(token)) => panic!("expected a fetch, got cached {token:?}"),
            Ok(Start::Wait) => panic!("expected a fetch, got wait"),
            Err(e) => panic!("expected a fetch, got {:?}: {e}", e.kind()),
        }
    }

    /// One `get_token` the way every host does it: [`drive::get_token`] with the fake host.
    /// Panics if a scripted reply is left over.
    #[track_caller]
    pub(super) fn run(&mut self) -> Run {
        self.run_with(&Call::default())
    }

    /// [`Scenario::run`] with options.
    #[track_caller]
    pub(super) fn run_with(&mut self, call: &Call) -> Run {
        self.run_by(call, |identity, request, io| {
            drive::get_token(identity, request, io, AccessToken::clone)
        })
    }

    /// [`Scenario::run`] through [`drive::get_token_shared`] with `store`; the warnings it
    /// gave are appended to `warnings`.
    #[track_caller]
    pub(super) fn run_shared<S: drive::SharedStore>(
        &mut self,
        store: &mut Option<S>,
        warnings: &mut Vec<String>,
    ) -> Run {
        self.run_by(&Call::default(), |identity, request, io| {
            drive::get_token_shared(
                identity,
                request,
                io,
                store,
                |w| warnings.push(w.to_string()),
                AccessToken::clone,
            )
        })
    }

    /// [`Scenario::run`] through the default chain ([`drive::get_token_default`]) with
    /// `chain`'s state.
    #[track_caller]
    pub(super) fn run_default(&mut self, chain: &mut crate::proto::DefaultChain) -> Run {
        self.run_by(&Call::default(), |identity, request, io| {
            drive::get_token_default(identity, chain, request, io, |identity, call, io| {
                drive::get_token(identity, call, io, AccessToken::clone)
            })
        })
    }

    #[track_caller]
    fn run_by(
        &mut self,
        call: &Call,
        get: impl FnOnce(
            &mut ManagedIdentity,
            &TokenRequest<'_>,
            &mut FakeIo,
        ) -> Result<AccessToken, Error>,
    ) -> Run {
        let started_at = self.clock;
        let mut io = FakeIo::new(
            self.clock,
            std::mem::take(&mut self.script),
            self.files.clone(),
        );
        io.fallback = self.fallback.clone();
        io.env = self.snapshot();
        io.facts = self.facts;
        io.log_level = crate::proto::Level::from_env(&io.env);
        (io.runs, io.seed) = (self.runs, self.seed);
        let request = call.request(&self.scope, &self.selector);
        let result = get(&mut self.identity, &request, &mut io);
        self.clock = io.clock;
        self.runs = io.runs;
        assert!(
            io.script.is_empty(),
            "scripted replies were not used: {:#?}",
            io.script
        );
        let requests = io
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Send(r) => Some(r.clone()),
                Event::Read(_) => None,
            })
            .collect();
        let file_reads = io
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Read(r) => Some(r.clone()),
                Event::Send(_) => None,
            })
            .collect();
        Run {
            result,
            requests,
            file_reads,
            events: io.events,
            sleeps: io.sleeps,
            sent_at: io.sent_at,
            started_at,
            finished_at: self.clock,
            logs: io.logs,
        }
    }
}

/// The 16 "random" bytes of run number `runs`: deterministic, different per run, with the
/// jitter seed in the second half when the test fixed one.
fn random_for(runs: u8, seed: Option<u64>) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = runs
            .wrapping_mul(0x9d)
            .wrapping_add((i as u8).wrapping_mul(0x3b))
            ^ 0xa5;
    }
    if let Some(seed) = seed {
        out[8..].copy_from_slice(&seed.to_le_bytes());
    }
    out
}

/// The host: virtual time, scripted replies and files, a record of what was sent and read.
/// Never sleeps, never touches the real filesystem.
struct FakeIo {
    clock: UnixMillis,
    script: VecDeque<Scripted>,
    files: BTreeMap<String, FileResult>,
    events: Vec<Event>,
    sleeps: Vec<UnixMillis>,
    sent_at: Vec<UnixMillis>,
    fallback: Option<Scripted>,
    env: EnvSnapshot,
    facts: HostFacts,
    runs: u8,
    seed: Option<u64>,
    log_level: Option<crate::proto::Level>,
    logs: Vec<(crate::proto::Level, String)>,
}

impl FakeIo {
    fn new(
        clock: UnixMillis,
        script: VecDeque<Scripted>,
        files: BTreeMap<String, FileResult>,
    ) -> Self {
        Self {
            clock,
            script,
            files,
            events: Vec::new(),
            sleeps: Vec::new(),
            sent_at: Vec::new(),
            fallback: None,
            env: EnvSnapshot::default(),
            facts: HostFacts::default(),
            runs: 0,
            seed: None,
            log_level: None,
            logs: Vec::new(),
        }
    }
}

impl Io for FakeIo {
    fn now(&mut self) -> UnixMillis {
        self.clock
    }

    fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.events.push(Event::Send(request.clone()));
        self.sent_at.push(self.clock);
        let Some(scripted) = self.script.pop_front().or_else(|| self.fallback.clone()) else {
            panic!("the core sent a request nobody scripted: {request:#?}");
        };
        self.clock = self.clock.plus_millis(scripted.takes_ms);
        match scripted.reply {
            Reply::Response(response) => Ok(response),
            Reply::Transport(error) => Err(error),
            Reply::Hang => {
                self.clock = self.clock.plus_millis(request.timeouts.total_ms);
                Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    "response timed out",
                ))
            }
        }
    }

    /// Returns exactly what was scripted for the path (even more than `max_len` bytes: tests
    /// of a host that breaks the cap script that on purpose).
    fn read_file(&mut self, read: &FileRead) -> Result<Vec<u8>, FileError> {
        self.events.push(Event::Read(read.clone()));
        match self.files.get(&read.path) {
            Some(result) => result.clone(),
            None => panic!("the core read a file nobody scripted: {read:#?}"),
        }
    }

    fn sleep_until(&mut self, deadline: UnixMillis) {
        self.sleeps.push(deadline);
        self.clock = self.clock.max(deadline);
    }

    fn env(&mut self) -> EnvSnapshot {
        self.env.clone()
    }

    fn facts(&mut self) -> HostFacts {
        self.facts
    }

    fn random(&mut self) -> [u8; 16] {
        self.runs = self.runs.wrapping_add(1);
        random_for(self.runs, self.seed)
    }

    fn log_level(&mut self) -> Option<crate::proto::Level> {
        self.log_level
    }

    fn log(&mut self, level: crate::proto::Level, line: &str) {
        assert!(
            self.log_level.is_some_and(|at| level <= at),
            "logged at {level:?} above the level: {line}"
        );
        self.logs.push((level, line.to_string()));
    }
}

/// What a request must look like, apart from `x-ms-client-request-id`.
pub(super) struct Expect<'a> {
    /// Method.
    pub method: Method,
    /// Scheme.
    pub scheme: Scheme,
    /// `host[:port]`.
    pub authority: &'a str,
    /// Path without query.
    pub path: &'a str,
    /// The decoded query, in order.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers other than `x-ms-client-request-id`, in order.
    pub headers: &'a [(&'a str, &'a str)],
}

/// Asserts `request` exactly: method, scheme, authority, path, decoded query, headers (minus
/// the request id, whose format is checked on its own), empty body.
#[track_caller]
pub(super) fn assert_request(request: &HttpRequest, expect: &Expect<'_>) {
    assert_head(request, expect);
    assert!(request.body.is_empty(), "a GET has no body: {request:?}");
    assert!(!request.body_sensitive);
}

/// Asserts a form post exactly: everything [`assert_request`] checks, then the body's fields,
/// decoded, in order, and whether the body is marked sensitive.
#[track_caller]
pub(super) fn assert_form_request(
    request: &HttpRequest,
    expect: &Expect<'_>,
    form: &[(&str, &str)],
    sensitive: bool,
) {
    assert_head(request, expect);
    let fields = form_pairs(&request.body);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(fields, form, "form body of {request:?}");
    assert_eq!(
        request.body_sensitive, sensitive,
        "body sensitivity of {request:?}"
    );
}

#[track_caller]
fn assert_head(request: &HttpRequest, expect: &Expect<'_>) {
    assert_eq!(request.method, expect.method, "method of {request:?}");
    assert_eq!(request.scheme, expect.scheme, "scheme of {request:?}");
    assert_eq!(
        request.authority, expect.authority,
        "authority of {request:?}"
    );
    let (path, _) = split_path(request);
    assert_eq!(path, expect.path, "path of {request:?}");
    let query = query_pairs(request);
    let query: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(query, expect.query, "query of {request:?}");
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .filter(|h| !h.name.eq_ignore_ascii_case("x-ms-client-request-id"))
        .map(|h| (h.name, h.value.as_str()))
        .collect();
    assert_eq!(headers, expect.headers, "headers of {request:?}");
    assert_request_id(request);
}

/// Path and raw query (without `?`) of `request`.
pub(super) fn split_path(request: &HttpRequest) -> (&str, &str) {
    request
        .path_and_query
        .split_once('?')
        .unwrap_or((request.path_and_query.as_str(), ""))
}

/// The query of `request`, percent-decoded, in order.
pub(super) fn query_pairs(request: &HttpRequest) -> Vec<(String, String)> {
    let (_, query) = split_path(request);
    decode_pairs(query, false)
}

/// An `application/x-www-form-urlencoded` body, decoded (`+` is a space), in order.
pub(super) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(body).unwrap_or_else(|e| panic!("form body is not UTF-8: {e}"));
    decode_pairs(text, true)
}

fn decode_pairs(text: &str, plus_is_space: bool) -> Vec<(String, String)> {
    if text.is_empty() {
        return Vec::new();
    }
    text.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                let s = if plus_is_space {
                    s.replace('+', " ")
                } else {
                    s.to_string()
                };
                percent_decode_str(&s)
                    .decode_utf8()
                    .unwrap_or_else(|e| panic!("{text:?} is not UTF-8: {e}"))
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// The request id: sent exactly once, a lowercase version-4 GUID (`x-ms-client-request-id`).
#[track_caller]
pub(super) fn assert_request_id(request: &HttpRequest) -> &str {
    let ids: Vec<&str> = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("x-ms-client-request-id"))
        .map(|h| h.value.as_str())
        .collect();
    assert_eq!(ids.len(), 1, "exactly one request id in {request:?}");
    let id = ids[0];
    assert!(is_v4_guid(id), "{id:?} is not a lowercase version-4 GUID");
    assert!(
        !request
            .headers
            .iter()
            .find(|h| h.name == "x-ms-client-request-id")
            .expect("present")
            .sensitive,
        "the request id is not a secret"
    );
    id
}

/// `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, lowercase hex.
pub(super) fn is_v4_guid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lens == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

// The harness checks its own checks: a helper that cannot fail would make every test pass.

#[test]
fn request_id_check_rejects_uppercase_wrong_version_and_wrong_variant() {
    assert!(is_v4_guid("0f5ad1b3-4a2a-4d45-9c3e-1f2c3d4e5f60"));
    assert!(is_v4_guid("0f5ad1b3-4a2a-4d45-bc3e-1f2c3d4e5f60"));
    for bad in [
        "0F5AD1B3-4A2A-4D45-9C3E-1F2C3D4E5F60",
        "0f5ad1b3-4a2a-1d45-9c3e-1f2c3d4e5f60",
        "0f5ad1b3-4a2a-4d45-cc3e-1f2c3d4e5f60",
        "0f5ad1b34a2a4d459c3e1f2c3d4e5f60",
        "{0f5ad1b3-4a2a-4d45-9c3e-1f2c3d4e5f60}",
        "0f5ad1b3-4a2a-4d45-9c3e-1f2c3d4e5f6g",
        "",
    ] {
        assert!(!is_v4_guid(bad), "{bad}");
    }
}

#[test]
fn query_pairs_are_decoded_in_order() {
    let mut s = Scenario::imds().reply(token_expiring_at(T0_SECS + 3600));
    let mut request = s.run().request().clone();
    request.path_and_query = "/p?b=%2F%20x&a=&c=%C3%A4".into();
    assert_eq!(
        query_pairs(&request),
        [
            ("b".to_string(), "/ x".to_string()),
            ("a".to_string(), String::new()),
            ("c".to_string(), "ä".to_string()),
        ]
    );
    request.path_and_query = "/p".into();
    assert_eq!(query_pairs(&request), []);
}

#[test]
#[should_panic(expected = "the core sent a request nobody scripted")]
fn unscripted_request_fails_the_test() {
    Scenario::imds().run();
}

#[test]
#[should_panic(expected = "scripted replies were not used")]
fn unused_reply_fails_the_test() {
    let mut s = Scenario::imds().reply(token_expiring_at(T0_SECS + 3600));
    s.run().token();
    s.push(token_expiring_at(T0_SECS + 3600));
    s.run();
}

#[test]
#[should_panic(expected = "headers of")]
fn request_assertion_catches_an_extra_header() {
    let mut s = Scenario::imds().reply(token_expiring_at(T0_SECS + 3600));
    let run = s.run();
    assert_request(
        run.request(),
        &Expect {
            method: Method::Get,
            scheme: Scheme::Http,
            authority: "169.254.169.254",
            path: "/metadata/identity/oauth2/token",
            query: &[
                ("api-version", "2018-02-01"),
                ("resource", "https://management.azure.com"),
            ],
            headers: &[],
        },
    );
}

#[test]
fn virtual_clock_only_moves_when_told() {
    let mut s = Scenario::imds().reply(token_expiring_at(T0_SECS + 3600).taking(1_500));
    assert_eq!(s.now(), T0);
    let run = s.run();
    assert_eq!(
        (run.started_at, run.finished_at),
        (T0, T0.plus_millis(1_500))
    );
    s.advance(500);
    assert_eq!(s.now(), T0.plus_millis(2_000));
    let cached = s.run();
    assert_eq!((cached.started_at, cached.finished_at), (s.now(), s.now()));

    let mut io = FakeIo::new(T0, VecDeque::new(), BTreeMap::new());
    io.sleep_until(T0.plus_millis(700));
    io.sleep_until(T0.plus_millis(100));
    assert_eq!(
        io.now(),
        T0.plus_millis(700),
        "sleeping never moves the clock back"
    );
    assert_eq!(io.sleeps, [T0.plus_millis(700), T0.plus_millis(100)]);
}

#[test]
#[should_panic(expected = "the core read a file nobody scripted")]
fn unscripted_file_read_fails_the_test() {
    // Workload identity reads the token file first; no file is scripted here.
    Scenario::new()
        .env("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", WORKLOAD_CLIENT)
        .run();
}

#[test]
fn file_reads_are_recorded_in_order_with_their_limits() {
    let mut s = Scenario::workload_identity().reply(json(
        200,
        serde_json::json!({"access_token": TOKEN, "expires_in": 3599}),
    ));
    let run = s.run();
    assert_eq!(run.steps(), ["read", "send"]);
    assert_eq!(
        run.events[0],
        Event::Read(FileRead {
            path: TOKEN_FILE.into(),
            max_len: 64 * 1024,
            follow_symlinks: true,
        })
    );
    assert_eq!(run.events[1], Event::Send(run.requests[0].clone()));
    assert_eq!(run.file_reads.len(), 1);
    // Files persist across runs; scripted errors come back as scripted.
    let mut io = FakeIo::new(T0, VecDeque::new(), s.files.clone());
    let read = FileRead {
        path: TOKEN_FILE.into(),
        max_len: 1,
        follow_symlinks: false,
    };
    assert_eq!(
        io.read_file(&read),
        Ok(ASSERTION.as_bytes().to_vec()),
        "the fake returns what was scripted, even past max_len"
    );
    s.set_file(
        TOKEN_FILE,
        Err(FileError::new(FileErrorKind::NoAccess, "no preopen")),
    );
    let mut io = FakeIo::new(T0, VecDeque::new(), s.files.clone());
    assert_eq!(
        io.read_file(&read).map_err(|e| e.kind),
        Err(FileErrorKind::NoAccess)
    );
}

#[test]
#[should_panic(expected = "unexpected file reads")]
fn nothing_read_assertion_catches_a_read() {
    let mut s = Scenario::workload_identity().reply(json(
        200,
        serde_json::json!({"access_token": TOKEN, "expires_in": 3599}),
    ));
    s.run().assert_nothing_read();
}

#[test]
fn form_pairs_are_decoded_in_order_with_plus_as_space() {
    assert_eq!(
        form_pairs(b"b=%2F%20x&a=&c=%C3%A4+y&d=%2B"),
        [
            ("b".to_string(), "/ x".to_string()),
            ("a".to_string(), String::new()),
            ("c".to_string(), "ä y".to_string()),
            ("d".to_string(), "+".to_string()),
        ]
    );
    assert_eq!(form_pairs(b""), []);
}

#[test]
#[should_panic(expected = "form body of")]
fn form_assertion_catches_fields_out_of_order() {
    let mut s = Scenario::cloud_shell().reply(token_expiring_at(T0_SECS + 3600));
    let mut request = s.run().request().clone();
    request.body = b"x=1&resource=https%3A%2F%2Fmanagement.azure.com".to_vec();
    assert_form_request(
        &request,
        &Expect {
            method: Method::Post,
            scheme: Scheme::Http,
            authority: "localhost:50342",
            path: "/oauth2/token",
            query: &[],
            headers: &[
                ("Metadata", "true"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
        },
        &[("resource", "https://management.azure.com"), ("x", "1")],
        false,
    );
}

#[test]
fn scripted_headers_reach_the_core() {
    let response = arc_challenge().into_response();
    assert_eq!(
        response.header("www-authenticate"),
        Some("Basic realm=/var/opt/azcmagent/tokens/x.key")
    );
}

#[test]
fn send_times_and_gaps_are_recorded() {
    let mut s = Scenario::imds()
        .seed(7)
        .reply(respond(503, "").taking(250))
        .reply(token_expiring_at(T0_SECS + 3600));
    let run = s.run();
    // The 503 arrives at 250 ms; the driver sleeps the jittered backoff from there.
    assert_eq!(run.sent_at.len(), 2);
    assert_eq!(run.sent_at[0], T0);
    assert_eq!(run.sleeps, [run.sent_at[1]]);
    assert_eq!(run.gaps(), [250 + 2_340]);
}

#[test]
fn fallback_answers_only_what_the_script_does_not() {
    let mut s = Scenario::imds().fallback(respond(400, "{}"));
    s.push(token_expiring_at(T0_SECS + 3600));
    s.run().token();
    s.set_scope("https://vault.azure.net/.default");
    assert_eq!(s.run().error().status(), Some(400));
}
