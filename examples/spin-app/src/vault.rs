//! `GET {VAULT_URL}/secrets/<name>` with a bearer token, through wasi:http.

use std::io::Read;
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// Key Vault's REST API version for secrets.
const API_VERSION: &str = "7.4";
/// Largest secret response read (Key Vault secrets are at most 25 KB).
const MAX_BODY: u64 = 64 * 1024;

/// True for a valid Key Vault secret name: 1-127 ASCII letters, digits and dashes.
pub fn is_secret_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The vault named by `VAULT_URL`, e.g. `https://myvault.vault.azure.net`.
pub struct Vault {
    url: String,
    scheme: Scheme,
    authority: String,
    base_path: String,
}

impl Vault {
    /// Reads and checks `VAULT_URL` (`http` is accepted for local emulators).
    pub fn from_env() -> Result<Vault, String> {
        let url = std::env::var("VAULT_URL").map_err(|_| {
            "VAULT_URL is not set (e.g. https://myvault.vault.azure.net)".to_string()
        })?;
        let (scheme, rest) = match url.split_once("://") {
            Some(("https", rest)) => (Scheme::Https, rest),
            Some(("http", rest)) => (Scheme::Http, rest),
            _ => return Err(format!("VAULT_URL {url:?} is not an http(s) URL")),
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(format!("VAULT_URL {url:?} has no host"));
        }
        Ok(Vault {
            scheme,
            authority: authority.to_string(),
            base_path: path.trim_end_matches('/').to_string(),
            url,
        })
    }

    /// The current value of secret `name`, read with `token`.
    pub fn secret(&self, name: &str, token: &str) -> Result<String, String> {
        let headers = Fields::from_list(&[
            (
                "authorization".to_string(),
                format!("Bearer {token}").into_bytes(),
            ),
            ("accept".to_string(), b"application/json".to_vec()),
        ])
        .map_err(|e| format!("building the request headers: {e:?}"))?;
        let request = OutgoingRequest::new(headers);
        let path = format!(
            "{}/secrets/{name}?api-version={API_VERSION}",
            self.base_path
        );
        request
            .set_method(&Method::Get)
            .and_then(|()| request.set_scheme(Some(&self.scheme)))
            .and_then(|()| request.set_authority(Some(&self.authority)))
            .and_then(|()| request.set_path_with_query(Some(&path)))
            .map_err(|()| format!("VAULT_URL {:?} does not make a valid request", self.url))?;
        let body = request.body().map_err(|()| "no request body".to_string())?;
        let pending =
            outgoing_handler::handle(request, None).map_err(|e| format!("{}: {e:?}", self.url))?;
        OutgoingBody::finish(body, None).map_err(|e| format!("{}: {e:?}", self.url))?;
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            // e.g. HttpRequestDenied when the host does not allow the vault.
            Some(Ok(Err(code))) => return Err(format!("{}: {code:?}", self.url)),
            _ => return Err(format!("{}: no response", self.url)),
        };
        let status = response.status();
        let incoming = response
            .consume()
            .map_err(|()| "no response body".to_string())?;
        let mut text = String::new();
        {
            let stream = incoming
                .stream()
                .map_err(|()| "no response body".to_string())?;
            stream
                .take(MAX_BODY)
                .read_to_string(&mut text)
                .map_err(|e| format!("reading the vault's answer: {e}"))?;
        }
        drop(incoming);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if status != 200 {
            let why = json["error"]["message"]
                .as_str()
                .unwrap_or("no error message");
            return Err(format!("the vault answered {status}: {why}"));
        }
        json["value"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "the vault's answer has no \"value\"".to_string())
    }
}
