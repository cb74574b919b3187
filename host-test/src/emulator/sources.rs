// About 600 lines: eight token endpoints, each with its own validation and body shapes, side
// by side so their differences read at a glance.
//! Per-source token endpoints, each speaking its own source's wire protocol: validation,
//! identity selection and the success/error body shapes of IMDS, App Service 2019, App Service
//! 2017 / Azure ML, Cloud Shell, Azure Arc, Service Fabric and the Entra endpoint used by
//! workload identity.

use azmi::proto::splitmix64;
use serde_json::{Value, json};

use super::ArcTamper;
use super::{Ctx, Identity, Request, Response, faults, parse_form};

/// IMDS (and Arc, Service Fabric) token path.
pub(crate) const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// App Service / Azure ML token path.
pub(crate) const MSI_PATH: &str = "/msi/token";
/// Cloud Shell token path (`POST`).
pub(crate) const CLOUD_SHELL_PATH: &str = "/oauth2/token";

const IMDS_API: &str = "2018-02-01";
const APP_SERVICE_API: &str = "2019-08-01";
const ML_API: &str = "2017-09-01";
const SERVICE_FABRIC_API: &str = "2019-07-01-preview";
const ARC_APIS: [&str; 3] = ["2020-06-01", "2019-11-01", "2019-08-15"];
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The emulated token endpoint kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Imds,
    AppService2019,
    AppService2017,
    CloudShell,
    Arc,
    ServiceFabric,
    WorkloadIdentity,
}

/// Which identity a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Selector<'a> {
    System,
    ClientId(&'a str),
    ObjectId(&'a str),
    ResourceId(&'a str),
}

/// Selector parameter names of IMDS and Arc.
const IMDS_SELECTORS: [&str; 3] = ["client_id", "object_id", "msi_res_id"];
/// Selector parameter names of App Service 2019 (`principal_id` is the documented alias).
const APP_SERVICE_SELECTORS: [&str; 4] = ["client_id", "object_id", "principal_id", "mi_res_id"];

impl Source {
    /// The source serving `req`, or `None` when it is not a token route.
    pub(crate) fn route(req: &Request) -> Option<Source> {
        let path = req.path.strip_suffix('/').unwrap_or(&req.path);
        let api = req.query_param("api-version");
        match req.method.as_str() {
            "GET" if path.eq_ignore_ascii_case(IMDS_PATH) => Some(match api {
                Some(v) if ARC_APIS.contains(&v) => Source::Arc,
                Some(SERVICE_FABRIC_API) => Source::ServiceFabric,
                _ => Source::Imds,
            }),
            "GET" if path.eq_ignore_ascii_case(MSI_PATH) => Some(match api {
                Some(ML_API) => Source::AppService2017,
                Some(SERVICE_FABRIC_API) => Source::ServiceFabric,
                _ => Source::AppService2019,
            }),
            "POST" if path == CLOUD_SHELL_PATH => Some(Source::CloudShell),
            "POST" if tenant_of(path).is_some() => Some(Source::WorkloadIdentity),
            _ => None,
        }
    }

    /// Whether `req` is the unauthenticated first leg of the Arc challenge (faults skip it).
    pub(crate) fn is_challenge(self, req: &Request) -> bool {
        self == Source::Arc && req.header("authorization").is_none()
    }

    /// Answers a token request.
    pub(crate) fn handle(self, ctx: &mut Ctx<'_>, req: &Request) -> Response {
        match self {
            Source::Imds => imds(ctx, req),
            Source::AppService2019 => app_service(ctx, req),
            Source::AppService2017 => app_service_2017(ctx, req),
            Source::CloudShell => cloud_shell(ctx, req),
            Source::Arc => arc(ctx, req),
            Source::ServiceFabric => service_fabric(ctx, req),
            Source::WorkloadIdentity => workload_identity(ctx, req),
        }
    }

    /// An error response in this source's own body shape: OAuth style (`error`,
    /// `error_description`) for IMDS, Cloud Shell and Arc, `statusCode`/`message` for App
    /// Service, a nested `error` object for Service Fabric, and Entra's OAuth body (with
    /// `error_codes` and a correlation id) for workload identity.
    pub(crate) fn error(self, ctx: &mut Ctx<'_>, status: u16, message: &str) -> Response {
        match self {
            Source::Imds | Source::CloudShell | Source::Arc => {
                let code = if status >= 500 {
                    "server_error"
                } else {
                    "invalid_request"
                };
                oauth_error(status, code, message)
            }
            Source::AppService2019 | Source::AppService2017 => {
                app_service_error(ctx, status, message)
            }
            Source::ServiceFabric => service_fabric_error(ctx, status, "EmulatedFault", message),
            Source::WorkloadIdentity => {
                let code = if status >= 500 {
                    "temporarily_unavailable"
                } else {
                    "invalid_request"
                };
                entra_error(ctx, status, code, 50000, message)
            }
        }
    }
}

/// The tenant of a workload-identity token path `/{tenant}/oauth2/v2.0/token`.
fn tenant_of(path: &str) -> Option<&str> {
    let tenant = path.strip_prefix('/')?.strip_suffix("/oauth2/v2.0/token")?;
    (!tenant.is_empty() && !tenant.contains('/')).then_some(tenant)
}

/// `{"error": code, "error_description": description}` (IMDS, Arc, Cloud Shell).
fn oauth_error(status: u16, code: &str, description: &str) -> Response {
    Response::json(
        status,
        &json!({"error": code, "error_description": description}),
    )
}

/// `{"statusCode", "message", "correlationId"}` (App Service).
fn app_service_error(ctx: &mut Ctx<'_>, status: u16, message: &str) -> Response {
    let id = ctx.correlation_id();
    Response::json(
        status,
        &json!({"statusCode": status, "message": message, "correlationId": id}),
    )
}

/// `{"error": {"correlationId", "code", "message"}}` (Service Fabric).
fn service_fabric_error(ctx: &mut Ctx<'_>, status: u16, code: &str, message: &str) -> Response {
    let id = ctx.correlation_id();
    Response::json(
        status,
        &json!({"error": {"correlationId": id, "code": code, "message": message}}),
    )
}

/// Entra ID error body (workload identity).
fn entra_error(ctx: &mut Ctx<'_>, status: u16, code: &str, aadsts: u32, text: &str) -> Response {
    let (trace, correlation) = (ctx.correlation_id(), ctx.correlation_id());
    let (y, mo, d, h, mi, s) = faults::utc_parts(ctx.now);
    Response::json(
        status,
        &json!({
            "error": code,
            "error_description": format!("AADSTS{aadsts}: {text}"),
            "error_codes": [aadsts],
            "timestamp": format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z"),
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={aadsts}"),
        }),
    )
}

/// The AADSTS500011 description for an unknown resource.
fn unknown_resource_text(resource: &str) -> String {
    format!(
        "The resource principal named {resource} was not found in the tenant named emulator. \
         This can happen if the application has not been installed by the administrator of the \
         tenant or consented to by any user in the tenant. You might have sent your \
         authentication request to the wrong tenant."
    )
}

/// Whether `resource` is an absolute `https://` URL other than `https://unknown.example`.
fn known_resource(resource: &str) -> bool {
    let Some(rest) = resource.strip_prefix("https://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !host.is_empty()
        && !resource.chars().any(char::is_whitespace)
        && resource.trim_end_matches('/') != "https://unknown.example"
}

/// Whether the request carries `Metadata: true`.
fn has_metadata(req: &Request) -> bool {
    req.header("metadata")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The selector among parameters `names`; an error when more than one is given.
fn selector<'a>(params: &'a [(String, String)], names: &[&str]) -> Result<Selector<'a>, String> {
    let mut found = params.iter().filter(|(k, _)| names.contains(&k.as_str()));
    let Some((name, value)) = found.next() else {
        return Ok(Selector::System);
    };
    if found.next().is_some() {
        return Err(format!(
            "Only one of the parameters {} may be specified",
            names.join(", ")
        ));
    }
    Ok(match name.as_str() {
        "client_id" | "clientid" => Selector::ClientId(value),
        "object_id" | "principal_id" => Selector::ObjectId(value),
        _ => Selector::ResourceId(value),
    })
}

/// The identity `sel` names: the system identity, or a user-assigned one matched
/// case-insensitively.
fn resolve(ctx: &Ctx<'_>, sel: Selector<'_>) -> Option<Identity> {
    let cfg = ctx.config();
    let find = |f: &dyn Fn(&Identity) -> &str, v: &str| {
        let hit = cfg
            .user_assigned
            .iter()
            .find(|i| f(i).eq_ignore_ascii_case(v));
        hit.cloned()
    };
    match sel {
        Selector::System => cfg.system.clone(),
        Selector::ClientId(v) => find(&|i| &i.client_id, v),
        Selector::ObjectId(v) => find(&|i| &i.object_id, v),
        Selector::ResourceId(v) => find(&|i| &i.resource_id, v),
    }
}

/// IMDS-shaped success body (string numbers), also used by Cloud Shell and Arc.
fn imds_body(m: &super::Minted, resource: &str, client_id: &str) -> Value {
    json!({
        "access_token": m.token,
        "refresh_token": "",
        "expires_in": m.lifetime.to_string(),
        "expires_on": m.expires_on.to_string(),
        "not_before": m.now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": client_id,
    })
}

/// Validation shared by IMDS and Arc after the headers: selector, resource, identity.
fn imds_like(
    ctx: &mut Ctx<'_>,
    req: &Request,
    honour_selector: bool,
) -> Result<(Identity, String), Response> {
    let sel = selector(&req.query, &IMDS_SELECTORS)
        .map_err(|e| oauth_error(400, "invalid_request", &e))?;
    let sel = if honour_selector {
        sel
    } else {
        Selector::System
    };
    let resource = match req.query_param("resource") {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => {
            let text = "Required audience parameter not specified";
            return Err(oauth_error(400, "invalid_request", text));
        }
    };
    if !known_resource(&resource) {
        let text = format!("AADSTS500011: {}", unknown_resource_text(&resource));
        return Err(oauth_error(400, "invalid_resource", &text));
    }
    let id = resolve(ctx, sel)
        .ok_or_else(|| oauth_error(400, "invalid_request", "Identity not found"))?;
    Ok((id, resource))
}

/// IMDS: `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…` + `Metadata: true`.
fn imds(ctx: &mut Ctx<'_>, req: &Request) -> Response {
    if !has_metadata(req) {
        let text = "Required metadata header not specified";
        return oauth_error(400, "bad_request_102", text);
    }
    if req.header("x-forwarded-for").is_some() {
        let text = "Requests with the X-Forwarded-For header are not allowed";
        return oauth_error(400, "invalid_request", text);
    }
    match req.query_param("api-version") {
        Some(IMDS_API) => {}
        None => {
            let text = "Required query variable 'api-version' is missing";
            return oauth_error(400, "invalid_request", text);
        }
        Some(v) => {
            let text = format!("Invalid api-version '{v}'; supported: {IMDS_API}");
            return oauth_error(400, "invalid_request", &text);
        }
    }
    match imds_like(ctx, req, true) {
        Ok((id, resource)) => {
            let m = ctx.mint(&id.client_id, &resource);
            m.respond(imds_body(&m, &resource, &id.client_id))
        }
        Err(resp) => resp,
    }
}

/// Azure Arc: IMDS-like, behind a `401` + `WWW-Authenticate: Basic realm=<key file>` challenge.
fn arc(ctx: &mut Ctx<'_>, req: &Request) -> Response {
    if !has_metadata(req) {
        let text = "Required metadata header not specified";
        return oauth_error(400, "bad_request_102", text);
    }
    let secret = req.header("authorization").and_then(|a| {
        let (scheme, secret) = a.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then_some(secret)
    });
    if !secret.is_some_and(|s| ctx.arc_key_valid(s))
        || ctx.arc_tamper() == ArcTamper::AlwaysChallenge
    {
        return arc_challenge(ctx);
    }
    let echo = ctx.arc_user_assigned();
    match imds_like(ctx, req, echo) {
        Ok((id, resource)) => {
            let m = ctx.mint(&id.client_id, &resource);
            let mut body = imds_body(&m, &resource, &id.client_id);
            let obj = body.as_object_mut().expect("object literal");
            obj.insert("ext_expires_in".into(), m.lifetime.to_string().into());
            if echo {
                obj.insert("object_id".into(), id.object_id.into());
                obj.insert("msi_res_id".into(), id.resource_id.into());
            } else {
                obj.remove("client_id");
            }
            m.respond(body)
        }
        Err(resp) => resp,
    }
}

/// Writes a fresh key file and answers 401 with its path as the Basic realm.
fn arc_challenge(ctx: &mut Ctx<'_>) -> Response {
    let n = ctx.serial();
    let secret = format!(
        "{:016x}{:016x}",
        splitmix64(n ^ ctx.now),
        splitmix64(!n ^ ctx.now.rotate_left(17))
    );
    let dir = ctx.config().arc_key_dir.clone();
    let name = format!("emulator-{n}.key");
    let path = dir.join(&name);
    let mut realm = ctx.config().arc_realm_dir.join(&name).display().to_string();
    let _ = std::fs::remove_file(&path);
    let written = std::fs::create_dir_all(&dir).and_then(|()| match ctx.arc_tamper() {
        ArcTamper::None | ArcTamper::AlwaysChallenge => std::fs::write(&path, &secret),
        ArcTamper::OversizeKey(n) => std::fs::write(&path, "k".repeat(n)),
        ArcTamper::Symlink(target) => std::os::unix::fs::symlink(target, &path),
        ArcTamper::MissingKey => Ok(()),
        ArcTamper::Realm(r) => {
            realm = r;
            Ok(())
        }
    });
    if let Err(e) = written {
        let text = format!("could not write key file {}: {e}", path.display());
        return oauth_error(500, "server_error", &text);
    }
    ctx.add_arc_key(secret);
    let text =
        "Authentication required: send the contents of the key file named in WWW-Authenticate";
    oauth_error(401, "unauthorized_client", text)
        .header("www-authenticate", format!("Basic realm={realm}"))
}

/// App Service 2019: `GET /msi/token?api-version=2019-08-01&resource=…` + `X-IDENTITY-HEADER`.
fn app_service(ctx: &mut Ctx<'_>, req: &Request) -> Response {
    match req.header("x-identity-header") {
        None => return app_service_error(ctx, 400, "No X-IDENTITY-HEADER in request"),
        Some(h) if h != ctx.config().identity_header => {
            return app_service_error(ctx, 401, "X-IDENTITY-HEADER does not match");
        }
        Some(_) => {}
    }
    if req.query_param("api-version") != Some(APP_SERVICE_API) {
        let text =
            format!("api-version must be {APP_SERVICE_API} (or {ML_API} with a secret header)");
        return app_service_error(ctx, 400, &text);
    }
    let sel = match selector(&req.query, &APP_SERVICE_SELECTORS) {
        Ok(sel) => sel,
        Err(e) => return app_service_error(ctx, 400, &e),
    };
    let Some(resource) = req.query_param("resource").filter(|r| !r.is_empty()) else {
        return app_service_error(ctx, 400, "The resource parameter is required");
    };
    let Some(id) = resolve(ctx, sel) else {
        return app_service_error(ctx, 400, "Unable to load requested managed identity.");
    };
    if !known_resource(resource) {
        let text = format!(
            "An unexpected error occurred while fetching the AAD Token. AADSTS500011: {}",
            unknown_resource_text(resource)
        );
        return app_service_error(ctx, 500, &text);
    }
    let m = ctx.mint(&id.client_id, resource);
    m.respond(json!({
        "access_token": m.token,
        "expires_on": m.expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": id.client_id,
    }))
}

/// App Service 2017 / Azure ML: `api-version=2017-09-01`, header `secret`, selector `clientid`
/// (empty or the system client ID = system; other selectors are ignored). `expires_on` is a
/// JSON number (Azure ML); force the legacy date strings with [`super::Fault::Expiry`].
fn app_service_2017(ctx: &mut Ctx<'_>, req: &Request) -> Response {
    match req.header("secret") {
        None => return app_service_error(ctx, 400, "No secret header in request"),
        Some(s) if s != ctx.config().msi_secret => {
            return app_service_error(ctx, 401, "The secret header does not match");
        }
        Some(_) => {}
    }
    let Some(resource) = req.query_param("resource").filter(|r| !r.is_empty()) else {
        return app_service_error(ctx, 400, "The resource parameter is required");
    };
    let cfg = ctx.config();
    let id = match req.query_param("clientid").filter(|c| !c.is_empty()) {
        None => cfg.system.clone(),
        Some(c) => cfg
            .system
            .iter()
            .chain(&cfg.user_assigned)
            .find(|i| i.client_id.eq_ignore_ascii_case(c))
            .cloned(),
    };
    let Some(id) = id else {
        return app_service_error(ctx, 400, "Unable to load requested managed identity.");
    };
    if !known_resource(resource) {
        let text = format!("AADSTS500011: {}", unknown_resource_text(resource));
        return app_service_error(ctx, 500, &text);
    }
    let m = ctx.mint(&id.client_id, resource);
    m.respond(json!({
        "access_token": m.token,
        "expires_on": m.expires_on,
        "resource": resource,
        "token_type": "Bearer",
        "client_id": id.client_id,
    }))
}

/// Cloud Shell: `POST /oauth2/token`, `Metadata: true`, form body `resource=…`; system only.
fn cloud_shell(ctx: &mut Ctx<'_>, req: &Request) -> Response {
    if !has_metadata(req) {
        let text = "Required metadata header not specified";
        return oauth_error(400, "bad_request_102", text);
    }
    let form = parse_form(&req.body);
    let names = ["client_id", "object_id", "msi_res_id", "mi_res_id"];
    if form.iter().any(|(k, _)| names.contains(&k.as_str())) {
        let text = "Cloud Shell supports only the system-assigned identity";
        return oauth_error(400, "invalid_request", text);
    }
    let resource = form
        .iter()
        .find(|(k, _)| k == "resource")
        .map(|(_, v)| v.as_str());
    let Some(resource) = resource.filter(|r| !r.is_empty()) else {
        let text = "Required audience parameter not specified";
        return oauth_error(400, "invalid_request", text);
    };
    if !known_resource(resource) {
        let text = format!("AADSTS500011: {}", unknown_resource_text(resource));
        return oauth_error(400, "invalid_resource", &text);
    }
    let Some(id) = ctx.config().system.clone() else {
        return oauth_error(400, "invalid_request", "Identity not found");
    };
    let m = ctx.mint(&id.client_id, resource);
    m.respond(imds_body(&m, resource, &id.client_id))
}

/// Service Fabric: `api-version=2019-07-01-preview`, header `Secret: <IDENTITY_HEADER>`.
/// The identity is fixed (system, else the first user-assigned); selectors are ignored.
/// `expires_on` is a JSON number.
fn service_fabric(ctx: &mut Ctx<'_>, req: &Request) -> Response {
    match req.header("secret") {
        None => {
            let text = "Secret is not found in the request headers.";
            return service_fabric_error(ctx, 401, "SecretHeaderNotFound", text);
        }
        Some(s) if s != ctx.config().identity_header => {
            let text = "Secret in the request headers does not match.";
            return service_fabric_error(ctx, 401, "SecretHeaderNotValid", text);
        }
        Some(_) => {}
    }
    let Some(resource) = req.query_param("resource").filter(|r| !r.is_empty()) else {
        let text = "Value cannot be null or empty. Parameter name: resource";
        return service_fabric_error(ctx, 400, "ArgumentNullOrEmpty", text);
    };
    let cfg = ctx.config();
    let Some(id) = cfg
        .system
        .clone()
        .or_else(|| cfg.user_assigned.first().cloned())
    else {
        let text = "No managed identity is configured for this application.";
        return service_fabric_error(ctx, 404, "ManagedIdentityNotFound", text);
    };
    if !known_resource(resource) {
        let text = format!("AADSTS500011: {}", unknown_resource_text(resource));
        return service_fabric_error(ctx, 400, "InvalidResource", &text);
    }
    let m = ctx.mint(&id.client_id, resource);
    m.respond(json!({
        "token_type": "Bearer",
        "access_token": m.token,
        "expires_on": m.expires_on,
        "resource": resource,
    }))
}

/// Entra ID: `POST /{tenant}/oauth2/v2.0/token` with a client-credentials form and a federated
/// client assertion. `client_id` must be a configured identity's client ID; `scope` must end in
/// `/.default`. `expires_in` is a JSON number.
fn workload_identity(ctx: &mut Ctx<'_>, req: &Request) -> Response {
    let tenant = tenant_of(req.path.strip_suffix('/').unwrap_or(&req.path)).unwrap_or_default();
    if !tenant
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        let text = format!("Tenant '{tenant}' not found.");
        return entra_error(ctx, 400, "invalid_request", 90002, &text);
    }
    let form = parse_form(&req.body);
    let field = |name: &str| {
        let hit = form.iter().find(|(k, _)| k == name);
        hit.map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    };
    // A service principal's secret, or a client assertion (workload identity, certificate).
    let with_secret = field("client_secret").is_some();
    let credential_fields: &[&str] = if with_secret {
        &["client_secret"]
    } else {
        &["client_assertion_type", "client_assertion"]
    };
    for name in ["grant_type", "client_id", "scope"]
        .iter()
        .chain(credential_fields)
    {
        if field(name).is_none() {
            let text = format!("The request body must contain the following parameter: '{name}'.");
            return entra_error(ctx, 400, "invalid_request", 900144, &text);
        }
    }
    let (client_id, scope) = (
        field("client_id").unwrap_or_default(),
        field("scope").unwrap_or_default(),
    );
    if field("grant_type") != Some("client_credentials") {
        let text = "The provided value for the input parameter 'grant_type' is not valid.";
        return entra_error(ctx, 400, "unsupported_grant_type", 70003, text);
    }
    if with_secret {
        if field("client_secret") != Some(ctx.config().client_secret.as_str()) {
            let text = format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            );
            return entra_error(ctx, 401, "invalid_client", 7000215, &text);
        }
    } else if field("client_assertion_type") != Some(JWT_BEARER) {
        let text =
            "The provided value for the input parameter 'client_assertion_type' is not valid.";
        return entra_error(ctx, 400, "invalid_request", 90014, text);
    }
    let assertion = field("client_assertion").unwrap_or_default();
    let federated = assertion == ctx.config().federated_token;
    // A signed assertion naming a certificate (`x5t#S256`) is a certificate credential's.
    if !with_secret && !federated && super::assertion::names_certificate(assertion) {
        let registered = ctx.config().client_certificate.clone().unwrap_or_default();
        let path = req.path.clone();
        if let Err(why) = super::assertion::check(assertion, &registered, client_id, &path, ctx.now)
        {
            let text = format!(
                "Client assertion failed signature validation or names an unknown certificate: {why}."
            );
            return entra_error(ctx, 401, "invalid_client", 700027, &text);
        }
    } else if !with_secret && !federated {
        let text = "No matching federated identity record found for presented assertion.";
        return entra_error(ctx, 401, "invalid_client", 70021, text);
    }
    let cfg = ctx.config();
    let known_client = cfg
        .system
        .iter()
        .chain(&cfg.user_assigned)
        .any(|i| i.client_id.eq_ignore_ascii_case(client_id));
    if !known_client {
        let text = format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
        );
        return entra_error(ctx, 400, "unauthorized_client", 700016, &text);
    }
    let Some(resource) = scope.strip_suffix("/.default") else {
        let text = format!(
            "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
        );
        return entra_error(ctx, 400, "invalid_scope", 1002012, &text);
    };
    if !known_resource(resource) {
        let text = unknown_resource_text(resource);
        return entra_error(ctx, 400, "invalid_resource", 500011, &text);
    }
    let m = ctx.mint(client_id, resource);
    m.respond(json!({
        "token_type": "Bearer",
        "expires_in": m.lifetime,
        "ext_expires_in": m.lifetime,
        "access_token": m.token,
    }))
}
