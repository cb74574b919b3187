// About 670 lines: the emulator's shared state (identities, issued tokens, faults, the request
// log) and its one dispatcher; each source's wire protocol is in `sources.rs`.
//! An Azure managed-identity emulator for tests and the `azmi emulator` command.
//!
//! [`Emulator::handle`] answers one [`Request`] synchronously; [`Emulator::serve`] puts the same
//! handler behind a loopback HTTP/1 server. Routes (`GET` unless noted; a trailing `/` is ignored):
//!
//! | route | served as |
//! |---|---|
//! | `/metadata/identity/oauth2/token` | IMDS (`api-version=2018-02-01`, and any unknown version), Azure Arc (`2020-06-01`, `2019-11-01`, `2019-08-15`), Service Fabric (`2019-07-01-preview`) |
//! | `/msi/token` (any case) | App Service 2019 (`2019-08-01`, and any unknown version), App Service 2017 / Azure ML (`2017-09-01`), Service Fabric (`2019-07-01-preview`) |
//! | `POST /oauth2/token` | Cloud Shell |
//! | `POST /{tenant}/oauth2/v2.0/token` | Entra ID token endpoint for workload identity |
//! | `/secrets/{name}` | a protected resource that accepts tokens minted for `https://vault.azure.net` |
//! | `/echo…` (any method) | echoes method, path, query, headers and `authorization` |
//!
//! Everything else gets 404. Every request is logged ([`Emulator::requests`]); token routes are
//! counted by [`Emulator::token_requests`] and are the only ones faults apply to (see [`faults`]).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azmi::proto::splitmix64;
use serde_json::{Value, json};

pub mod assertion;
mod faults;
mod server;
mod sources;
#[cfg(test)]
mod tests;
pub mod tls;

pub use faults::{ExpiryFormat, Fault};
pub use tls::TestCertificate;

use faults::{Effect, Shape};
use sources::Source;

/// One HTTP request as the emulator saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Method, e.g. `"GET"`.
    pub method: String,
    /// Path without the query, not percent-decoded, e.g. `"/metadata/identity/oauth2/token"`.
    pub path: String,
    /// Query parameters, percent-decoded (`+` is a space), in wire order.
    pub query: Vec<(String, String)>,
    /// Headers with lower-cased names, in the order the transport reported them.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name` (case-sensitive, as servers treat them).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Builds a request from a raw request-target (`"/path?a=b%20c"`, or absolute form
    /// `"http://host/path?…"`): splits off and decodes the query and drops any fragment.
    /// Header names are lower-cased.
    pub fn from_parts(
        method: &str,
        target: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Request {
        let target = target.split('#').next().unwrap_or_default();
        let target = match target.split_once("://") {
            Some((_, rest)) if !target.starts_with('/') => {
                rest.find(['/', '?']).map_or("/", |i| &rest[i..])
            }
            _ => target,
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method: method.to_string(),
            path: if path.is_empty() { "/" } else { path }.to_string(),
            query: parse_form(query.as_bytes()),
            headers: headers
                .into_iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v))
                .collect(),
            body,
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` text (also used for query strings).
pub(crate) fn parse_form(text: &[u8]) -> Vec<(String, String)> {
    text.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=');
            let (k, v) = match eq {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Percent-decodes one component; `+` becomes a space, malformed escapes stay literal.
fn percent_decode(input: &[u8]) -> String {
    let hex = |i: usize| input.get(i).and_then(|&b| (b as char).to_digit(16));
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The emulator's answer to one request.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (no `content-length`; the transport adds it).
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
    /// How long the transport should wait before sending this response ([`Fault::Delay`]).
    pub delay: Option<Duration>,
    /// Send the body one byte per this interval ([`Fault::Trickle`]).
    pub trickle: Option<Duration>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: &Value) -> Response {
        Response::with_body(status, "application/json; charset=utf-8", body.to_string())
    }

    /// A response with the given content type and body.
    pub fn with_body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.into(),
            delay: None,
            trickle: None,
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// An identity the emulated machine has.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Client (application) ID.
    pub client_id: String,
    /// Object (principal) ID.
    pub object_id: String,
    /// ARM resource ID.
    pub resource_id: String,
}

/// Emulated machine configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The system-assigned identity (`None`: not enabled).
    pub system: Option<Identity>,
    /// User-assigned identities.
    pub user_assigned: Vec<Identity>,
    /// App Service / Service Fabric secret (`IDENTITY_HEADER`).
    pub identity_header: String,
    /// Azure ML / App Service 2017 secret (`MSI_SECRET`).
    pub msi_secret: String,
    /// Lifetime of minted tokens in seconds (default 86399, like IMDS).
    pub token_lifetime_secs: u64,
    /// Where Azure Arc key files are written (default `/var/opt/azcmagent/tokens`).
    pub arc_key_dir: PathBuf,
    /// The directory the Arc challenge names in its realm (default `/var/opt/azcmagent/tokens`).
    /// Tests write keys to a temporary `arc_key_dir` that the host preopens at this path.
    pub arc_realm_dir: PathBuf,
    /// The federated token (client assertion) workload identity must present.
    pub federated_token: String,
    /// The client secret Entra accepts from a service principal (`client_secret` grant).
    pub client_secret: String,
    /// The certificate (DER) registered on the applications: certificate client assertions
    /// must be signed by its key ([`CLIENT_CERTIFICATE_PEM`] holds it with its key).
    pub client_certificate: Option<Vec<u8>>,
}

/// Deterministic ids for identity number `n`.
fn default_identity(n: u32, resource_id: &str) -> Identity {
    let d = char::from_digit(n, 10).unwrap_or('0').to_string();
    Identity {
        client_id: format!(
            "{a}-{b}-{b}-{b}-{c}",
            a = d.repeat(8),
            b = d.repeat(4),
            c = d.repeat(12)
        ),
        object_id: format!("{d}0000000-0000-0000-0000-00000000000{d}"),
        resource_id: resource_id.to_string(),
    }
}

impl Default for Config {
    /// System identity `11111111-1111-1111-1111-111111111111`; user-assigned identities
    /// `22222222-…` (`azmi-ua-1`) and `33333333-…` (`azmi-ua-2`); object ids `N0000000-…-00000000000N`.
    fn default() -> Self {
        const RG: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/azmi";
        const UA: &str = "providers/Microsoft.ManagedIdentity/userAssignedIdentities";
        Config {
            system: Some(default_identity(
                1,
                &format!("{RG}/providers/Microsoft.Compute/virtualMachines/azmi-vm"),
            )),
            user_assigned: vec![
                default_identity(2, &format!("{RG}/{UA}/azmi-ua-1")),
                default_identity(3, &format!("{RG}/{UA}/azmi-ua-2")),
            ],
            identity_header: "emulator-identity-header".to_string(),
            msi_secret: "emulator-msi-secret".to_string(),
            token_lifetime_secs: 86_399,
            arc_key_dir: PathBuf::from("/var/opt/azcmagent/tokens"),
            arc_realm_dir: PathBuf::from("/var/opt/azcmagent/tokens"),
            federated_token: "eyJhbGciOiJSUzI1NiJ9.emulator-service-account.signature".to_string(),
            client_secret: "emulator~client.secret_value-0123456789".to_string(),
            client_certificate: client_certificate_der(),
        }
    }
}

/// What the emulator knows about a token it minted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The `resource` the token was requested for, verbatim (for workload identity: the scope
    /// without `/.default`).
    pub resource: String,
    /// Client ID of the identity the token represents.
    pub client_id: String,
    /// Expiry, Unix seconds.
    pub expires_on: u64,
}

/// Thread-safe, cheaply clonable handle to one emulated machine.
#[derive(Clone)]
pub struct Emulator {
    state: Arc<Mutex<State>>,
}

/// Mutable emulator state behind the handle's lock.
pub(crate) struct State {
    config: Config,
    /// Requests in arrival order, each with "was a token route".
    log: Vec<(Request, bool)>,
    faults: VecDeque<Fault>,
    issued: HashMap<String, Issued>,
    /// Counter behind minted tokens, correlation ids and Arc key names.
    serial: u64,
    /// Secrets written to Arc key files and not yet superseded.
    arc_keys: Vec<String>,
    /// Whether the Arc agent honours (and echoes) user-assigned selectors.
    arc_user_assigned: bool,
    /// How the Arc agent misbehaves (security tests).
    arc_tamper: ArcTamper,
}

/// Ways a compromised or broken Arc agent can misbehave, to test the client's key-file rules
/// (the key must be a `.key` file directly in the agent's key directory, at most 4096 bytes, and
/// never read through a symbolic link). The default is a correct agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ArcTamper {
    /// A correct agent.
    #[default]
    None,
    /// Advertise this realm verbatim (e.g. `/etc/shadow`, a `..` path) and write no key.
    Realm(String),
    /// Write a key file of this many bytes.
    OversizeKey(usize),
    /// Make the key file a symbolic link to this path.
    Symlink(PathBuf),
    /// Name a key file but never write it.
    MissingKey,
    /// Answer 401 even to a correct key.
    AlwaysChallenge,
}

impl Emulator {
    /// A new emulator with an empty log and no faults.
    pub fn new(config: Config) -> Self {
        Emulator {
            state: Arc::new(Mutex::new(State {
                config,
                log: Vec::new(),
                faults: VecDeque::new(),
                issued: HashMap::new(),
                serial: 0,
                arc_keys: Vec::new(),
                arc_user_assigned: true,
                arc_tamper: ArcTamper::None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the configuration.
    pub fn config(&self) -> Config {
        self.lock().config.clone()
    }

    /// Serves one request and records it. Never sleeps: a fault delay is returned in
    /// [`Response::delay`] for the caller to apply.
    pub fn handle(&self, req: Request) -> Response {
        let mut st = self.lock();
        let source = Source::route(&req);
        st.log.push((req.clone(), source.is_some()));
        let mut ctx = Ctx {
            st: &mut st,
            now: now_secs(),
        };
        match source {
            Some(source) => ctx.token(source, &req),
            None => ctx.other(&req),
        }
    }

    /// Every request received, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().log.iter().map(|(r, _)| r.clone()).collect()
    }

    /// How many logged requests hit a token route (including rejected ones and Arc challenges).
    pub fn token_requests(&self) -> usize {
        self.lock().log.iter().filter(|(_, token)| *token).count()
    }

    /// Empties the request log (and so resets [`Emulator::token_requests`]).
    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Queues a fault; faults apply FIFO to the next token requests (see [`faults`]).
    pub fn push_fault(&self, fault: Fault) {
        if fault.times() > 0 {
            self.lock().faults.push_back(fault);
        }
    }

    /// Faults not yet used up, front first.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.lock().faults.iter().cloned().collect()
    }

    /// How many tokens the emulator has minted.
    pub fn issued_count(&self) -> usize {
        self.lock().issued.len()
    }

    /// What the emulator recorded about a token it minted.
    pub fn issued(&self, access_token: &str) -> Option<Issued> {
        self.lock().issued.get(access_token).cloned()
    }

    /// Emulates an Azure Arc agent that does (`true`, the default) or does not support
    /// user-assigned identities. An old agent ignores the selector, returns the system identity
    /// and echoes no identity fields.
    pub fn set_arc_user_assigned(&self, supported: bool) {
        self.lock().arc_user_assigned = supported;
    }

    /// Makes the Arc agent misbehave as `tamper` says (security tests).
    pub fn set_arc_tamper(&self, tamper: ArcTamper) {
        self.lock().arc_tamper = tamper;
    }

    /// Starts the loopback server on 127.0.0.1:`port` (0 = ephemeral) on the current tokio
    /// runtime. Returns the bound address and the accept task; aborting the task (or shutting
    /// down the runtime) stops the server and all its connections.
    pub async fn serve(
        &self,
        port: u16,
    ) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
        server::serve(self.clone(), port, None).await
    }

    /// Like [`Emulator::serve`], over HTTPS with `tls` (see [`TestCertificate`]).
    pub async fn serve_tls(
        &self,
        port: u16,
        tls: std::sync::Arc<rustls::ServerConfig>,
    ) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
        server::serve(self.clone(), port, Some(tls)).await
    }
}

/// Wall-clock Unix seconds.
#[allow(
    clippy::disallowed_methods,
    reason = "the emulator runs on the host and stamps tokens with the real clock"
)]
/// A test-only client certificate and its RSA key (PEM), registered on the emulator's
/// applications: `AZURE_CLIENT_CERTIFICATE_PATH` may point at a copy of it. The same fixture
/// the core's certificate tests use (`src/proto/tests/fixtures/README.md` says how it was made).
pub const CLIENT_CERTIFICATE_PEM: &[u8] =
    include_bytes!("../../../src/proto/tests/fixtures/pkcs1.pem");

/// The DER of the certificate in [`CLIENT_CERTIFICATE_PEM`].
fn client_certificate_der() -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(CLIENT_CERTIFICATE_PEM)
        .ok()
        .map(|der| der.to_vec())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh token as minted by [`Ctx::mint`].
pub(crate) struct Minted {
    /// The opaque access token.
    pub token: String,
    /// Issue time, Unix seconds.
    pub now: u64,
    /// Lifetime in seconds.
    pub lifetime: u64,
    /// Expiry, Unix seconds.
    pub expires_on: u64,
    shape: Shape,
}

impl Minted {
    /// Finishes a success body: applies a forced expiry format and padding, returns 200.
    pub fn respond(&self, mut body: Value) -> Response {
        if let (Some(format), Some(obj)) = (self.shape.format, body.as_object_mut()) {
            obj.remove("expires_on");
            obj.remove("expires_in");
            if let Some((name, value)) = format.render(self.expires_on, self.lifetime) {
                obj.insert(name.to_string(), value);
            }
        }
        let mut text = body.to_string();
        // Adding `,"padding":"…"` costs 13 bytes plus the padding itself.
        if let (Some(target), Some(obj)) = (self.shape.pad_to, body.as_object_mut())
            && target >= text.len() + 13
        {
            obj.insert(
                "padding".into(),
                "x".repeat(target - text.len() - 13).into(),
            );
            text = body.to_string();
        }
        Response::with_body(200, "application/json; charset=utf-8", text)
    }
}

/// Per-request access to the state, handed to the source handlers.
pub(crate) struct Ctx<'a> {
    st: &'a mut State,
    /// Wall-clock time of this request, Unix seconds.
    pub now: u64,
}

impl Ctx<'_> {
    /// The emulator configuration.
    pub fn config(&self) -> &Config {
        &self.st.config
    }

    /// Whether the Arc agent supports user-assigned identities.
    pub fn arc_user_assigned(&self) -> bool {
        self.st.arc_user_assigned
    }

    /// How the Arc agent misbehaves.
    pub fn arc_tamper(&self) -> ArcTamper {
        self.st.arc_tamper.clone()
    }

    /// Next value of the shared counter.
    pub fn serial(&mut self) -> u64 {
        self.st.serial += 1;
        self.st.serial
    }

    /// A fresh, deterministic GUID-looking correlation id.
    pub fn correlation_id(&mut self) -> String {
        let n = self.serial();
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    /// Records an Arc key secret as valid.
    pub fn add_arc_key(&mut self, secret: String) {
        self.st.arc_keys.push(secret);
    }

    /// Whether `secret` was written to an Arc key file.
    pub fn arc_key_valid(&self, secret: &str) -> bool {
        self.st.arc_keys.iter().any(|k| k == secret)
    }

    /// Mints a token for `client_id` and `resource`, using up a shaping fault at the front of the
    /// queue, and records it for [`Emulator::issued`].
    pub fn mint(&mut self, client_id: &str, resource: &str) -> Minted {
        let mut shape = Shape::default();
        if let Some(Effect::Shape(s)) = self.st.faults.front().map(Fault::effect) {
            shape = s;
            self.use_front_fault();
        }
        let lifetime = shape.lifetime.unwrap_or(self.st.config.token_lifetime_secs);
        let expires_on = self.now + lifetime;
        let n = self.serial();
        let token = format!(
            "emu.{n}.{:016x}{:016x}",
            splitmix64(n ^ self.now.rotate_left(32)),
            splitmix64(n.wrapping_add(fnv(resource) ^ fnv(client_id)))
        );
        self.st.issued.insert(
            token.clone(),
            Issued {
                resource: resource.to_string(),
                client_id: client_id.to_string(),
                expires_on,
            },
        );
        Minted {
            token,
            now: self.now,
            lifetime,
            expires_on,
            shape,
        }
    }

    /// Uses the front fault once, dropping it when it is used up.
    fn use_front_fault(&mut self) {
        if let Some(front) = self.st.faults.front_mut() {
            *front.times_mut() -= 1;
            if front.times() == 0 {
                self.st.faults.pop_front();
            }
        }
    }

    /// Serves a token route: applies a replacing or delaying fault, else asks the source.
    fn token(&mut self, source: Source, req: &Request) -> Response {
        if source.is_challenge(req) {
            return source.handle(self, req);
        }
        let Some(front) = self.st.faults.front().cloned() else {
            return source.handle(self, req);
        };
        match front.effect() {
            Effect::Shape(_) => source.handle(self, req),
            Effect::Delay(by) => {
                self.use_front_fault();
                let mut resp = source.handle(self, req);
                resp.delay = Some(by);
                resp
            }
            Effect::Trickle(every) => {
                self.use_front_fault();
                let mut resp = source.handle(self, req);
                resp.trickle = Some(every);
                resp
            }
            Effect::Replace => {
                self.use_front_fault();
                self.replace(source, front)
            }
        }
    }

    /// The response a replacing fault produces.
    fn replace(&mut self, source: Source, fault: Fault) -> Response {
        match fault {
            Fault::Status {
                status,
                retry_after,
                body,
                ..
            } => {
                let mut resp = match body {
                    Some(b) if serde_json::from_str::<Value>(&b).is_ok() => {
                        Response::with_body(status, "application/json; charset=utf-8", b)
                    }
                    Some(b) => Response::with_body(status, "text/plain; charset=utf-8", b),
                    None => {
                        let text = format!("emulated fault: HTTP {status}");
                        source.error(self, status, &text)
                    }
                };
                if let Some(value) = retry_after {
                    resp = resp.header("retry-after", value);
                }
                resp
            }
            Fault::Html { status, .. } => {
                Response::with_body(status, "text/html", faults::html_page(status))
            }
            Fault::MalformedBody { .. } => {
                Response::with_body(200, "application/json; charset=utf-8", "{not json")
            }
            _ => Response::with_body(200, "application/json; charset=utf-8", Vec::new()),
        }
    }

    /// Serves the non-token routes: protected resource, echo, 404.
    fn other(&mut self, req: &Request) -> Response {
        let path = req.path.as_str();
        if let Some(name) = path.strip_prefix("/secrets/")
            && req.method == "GET"
            && !name.is_empty()
            && !name.contains('/')
        {
            return self.secret(req, name);
        }
        if path.starts_with("/echo") {
            return Response::json(
                200,
                &json!({
                    "method": req.method,
                    "path": req.path,
                    "query": req.query,
                    "headers": req.headers,
                    "authorization": req.header("authorization"),
                }),
            );
        }
        Response::json(
            404,
            &json!({
                "error": "not_found",
                "error_description": format!("The emulator serves no route {} {}", req.method, req.path),
            }),
        )
    }

    /// `GET /secrets/{name}`: needs an unexpired bearer token minted for Key Vault.
    fn secret(&self, req: &Request, name: &str) -> Response {
        let token = req.header("authorization").and_then(|a| {
            let (scheme, token) = a.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        let issued = token.and_then(|t| self.st.issued.get(t));
        let why = match issued {
            None => "missing or unknown bearer token",
            Some(i) if i.resource.trim_end_matches('/') != "https://vault.azure.net" => {
                "token audience is not https://vault.azure.net"
            }
            Some(i) if i.expires_on <= self.now => "token expired",
            Some(_) => return Response::json(200, &json!({ "value": format!("secret-{name}") })),
        };
        Response::json(
            401,
            &json!({"error": {"code": "Unauthorized", "message": why}}),
        )
        .header(
            "www-authenticate",
            "Bearer authorization=\"https://login.microsoftonline.com/emulator\", resource=\"https://vault.azure.net\"",
        )
    }
}

/// FNV-1a over a string.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
