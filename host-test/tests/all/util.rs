//! Shared rig: one compiled host per test binary, in-memory routing to the emulator.

use azmi_host_test::bindings::ErrorInfo;
use azmi_host_test::emulator::{Config, Emulator, Request};
use azmi_host_test::{AccessToken, Egress, Guest, GuestConfig, Host, IdentitySelector, TokenError};
use std::sync::OnceLock;

/// Where tests pretend the emulator lives (served in memory, never a socket).
pub const EMU: &str = "http://127.0.0.1:4010";
/// The scope most tests ask for, and its resource.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
pub const VAULT: &str = "https://vault.azure.net";

pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::new().expect("compiling the component"))
}

pub struct Rig {
    pub emulator: Emulator,
    pub guest: Guest,
}

impl Rig {
    /// A token for `scope` and `selector`, or a panic naming the error.
    pub async fn token(&mut self, scope: &str, selector: &IdentitySelector) -> AccessToken {
        let result = self.guest.get_token(scope, selector).await.unwrap();
        result.unwrap_or_else(|e| panic!("expected a token: {e:?}"))
    }

    /// The error for `scope` and `selector`, or a panic if a token came back.
    pub async fn error(&mut self, scope: &str, selector: &IdentitySelector) -> TokenError {
        let result = self.guest.get_token(scope, selector).await.unwrap();
        match result {
            Ok(_) => panic!("expected an error, got a token"),
            Err(error) => error,
        }
    }
}

/// The details of an `authentication-failed` error (panics on any other class).
#[track_caller]
pub fn failed(error: &TokenError) -> &ErrorInfo {
    match error {
        TokenError::AuthenticationFailed(info) => info,
        other => panic!("expected authentication_failed: {other:?}"),
    }
}

/// The details of a `credential-unavailable` error (panics on any other class).
#[track_caller]
pub fn unavailable(error: &TokenError) -> &ErrorInfo {
    match error {
        TokenError::CredentialUnavailable(info) => info,
        other => panic!("expected credential_unavailable: {other:?}"),
    }
}

/// A loopback port with nothing listening on it, reserved while this lives: the socket is
/// bound but never listens, so a connection is refused and no other test can take the port.
pub struct ClosedPort {
    pub port: u16,
    _socket: tokio::net::TcpSocket,
}

/// A [`ClosedPort`]; keep it alive for as long as the port must stay closed.
pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    ClosedPort {
        port,
        _socket: socket,
    }
}

/// A loopback listener that nobody answers from: it records every connection and the HTTP
/// request head it reads (up to the blank line), then closes without a response. What a
/// client sees there is "no answer", as from a machine without managed identity; what it
/// sent is in [`Recorder::heads`].
pub struct Recorder {
    pub address: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
            }
        });
        Recorder {
            address,
            seen,
            task,
        }
    }

    /// One entry per connection: the request head read from it (possibly empty).
    pub fn heads(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The header `name` (any case) of an HTTP request `head`, if present.
pub fn head_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// [`GuestConfig::new`] (the CLI's preopens) without the machine's Arc agent directory, whose
/// `himds` would make detection pick Arc on an Arc-enabled machine.
pub fn cli_like_config(env: Vec<(String, String)>, egress: Egress) -> GuestConfig {
    let mut config = GuestConfig::new(env, egress);
    config
        .preopens
        .retain(|(_, guest)| guest != azmi_host_test::host::ARC_AGENT_DIR);
    config
}

/// A fresh guest whose HTTP reaches only `EMU`, served by a fresh emulator.
pub async fn rig(env: &[(&str, &str)]) -> Rig {
    rig_with(Config::default(), env).await
}

pub async fn rig_with(config: Config, env: &[(&str, &str)]) -> Rig {
    rig_full(config, env, Vec::new()).await
}

/// A rig whose guest also sees `preopens` (`(host dir, guest path)`, read-only).
pub async fn rig_full(
    config: Config,
    env: &[(&str, &str)],
    preopens: Vec<(std::path::PathBuf, String)>,
) -> Rig {
    let emulator = Emulator::new(config);
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let guest = host()
        .instantiate(GuestConfig {
            env,
            egress: Egress::emulator(&emulator, EMU),
            preopens,
            tokio_clock: true,
            keyvalue: None,
        })
        .await
        .expect("instantiating the component");
    Rig { emulator, guest }
}

pub fn imds_env() -> Vec<(&'static str, &'static str)> {
    vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST", EMU)]
}

pub const APP_SERVICE_ENDPOINT: &str = "http://127.0.0.1:4010/msi/token";

pub fn app_service_env(secret: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("IDENTITY_ENDPOINT", APP_SERVICE_ENDPOINT),
        ("IDENTITY_HEADER", secret),
    ]
}

/// Asserts the exact request: method, path, ordered query, and the header set (besides
/// `host` and the random `x-ms-client-request-id`, whose GUID form is checked).
pub fn assert_request(
    request: &Request,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) {
    assert_eq!(request.method, method, "method of {request:?}");
    assert_eq!(request.path, path, "path of {request:?}");
    let got: Vec<(&str, &str)> = request
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, query, "query of {request:?}");
    let mut got: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(k, _)| k != "host" && k != "x-ms-client-request-id")
        .cloned()
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want, "headers of {request:?}");
    let id = request
        .header("x-ms-client-request-id")
        .expect("x-ms-client-request-id");
    assert!(is_guid_v4(id), "x-ms-client-request-id {id:?}");
}

fn is_guid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
        && s.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// A fresh, empty scratch directory for one test (removed by [`Scratch`]'s drop).
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("azmi-test-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process stopped on drop (also when a test panics) as a person would stop it:
/// SIGTERM, so it removes its scratch files, then SIGKILL if it is still running 5 s later.
pub struct ChildProcess(pub std::process::Child);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) {
            if std::time::Instant::now() > deadline {
                let _ = self.0.kill();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.0.wait();
    }
}
