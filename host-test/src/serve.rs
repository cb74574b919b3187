//! `azmi serve`: runs a `wasi:http` component (e.g. a Spin app composed with azmi.wasm) on
//! 127.0.0.1 with one fresh instance per request, as Spin does, and the CLI's egress policy
//! for its outbound requests. Every instance gets `wasi:keyvalue` on one store (in memory for
//! the process, or Redis shared by several processes): azmi's shared-cache build keeps its
//! tokens there, so they outlive the request.

use crate::egress::{Egress, Hooks, Refused};
use crate::host::{GuestState, Host, add_keyvalue_to_linker};
use crate::keyvalue::KeyValue;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use wasmtime::Store;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// What every instance gets.
#[derive(Clone)]
pub struct ServeConfig {
    /// The whole environment the component sees (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Where its outbound requests may go.
    pub egress: Egress,
    /// The store behind `wasi:keyvalue`, one for all instances (its clones share the data).
    pub keyvalue: KeyValue,
}

/// A compiled `wasi:http/proxy` component, ready to serve.
#[derive(Clone)]
pub struct Server {
    pre: ProxyPre<GuestState>,
    config: Arc<ServeConfig>,
}

impl Server {
    /// Compiles `wasm`, a component exporting `wasi:http/incoming-handler`. Its imports may
    /// be any of WASI 0.2 (not only the `wasi:http/proxy` world): azmi needs the environment.
    /// The engine is [`Host::new_engine`]'s (component-model concurrency off: a WASI 0.2
    /// component does not use it, and with it on every import call costs a host task).
    pub fn new(wasm: &[u8], config: ServeConfig) -> wasmtime::Result<Server> {
        let engine = Host::new_engine()?;
        let component = Component::new(&engine, wasm)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        add_keyvalue_to_linker(&mut linker)?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Server {
            pre,
            config: Arc::new(config),
        })
    }

    /// Listens on 127.0.0.1:`port` (0 = ephemeral) on the current tokio runtime. Returns the
    /// bound address and the accept task; aborting it closes every connection.
    pub async fn serve(self, port: u16) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let server = self.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| server.clone().respond(req));
                    // A client hanging up mid-request is not a server error.
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok((address, task))
    }

    /// Serves one request; a failure of the host or guest becomes a 500 (logged on stderr).
    async fn respond(
        self,
        req: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Infallible> {
        Ok(self.handle(req).await.unwrap_or_else(|e| {
            eprintln!("azmi serve: {e:#}");
            plain(500, "the component failed to handle the request")
        }))
    }

    /// One fresh instance runs `wasi:http/incoming-handler.handle` for `req`.
    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
    ) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        for (name, value) in &self.config.env {
            wasi.env(name, value);
        }
        let refused = Arc::new(Mutex::new(Vec::new()));
        let mut state = GuestState::new(
            wasi.build(),
            Hooks::new(self.config.egress.clone(), refused.clone()),
        );
        state.keyvalue = Some(self.config.keyvalue.clone());
        let mut store = Store::new(self.pre.engine(), state);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        // The guest may keep running (writing the body) after it has set the response.
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            let result = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await;
            log_refused(&refused);
            result
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Ok(plain(502, &format!("the component answered {code:?}"))),
            Err(_) => match task.await {
                Ok(Ok(())) => wasmtime::bail!("the component never set a response"),
                Ok(Err(e)) => Err(e.context("the component trapped before responding")),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// Tells the operator which destinations the egress policy refused.
fn log_refused(refused: &Mutex<Vec<Refused>>) {
    for r in refused.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        eprintln!(
            "azmi serve: refused outbound request to {} (not allowed; see --allow-outbound)",
            r.url
        );
    }
}

/// A plain-text response made by the host.
fn plain(status: u16, text: &str) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(format!("{text}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
}
