//! The local API: HTTP/1.1 with JSON bodies on a root-only unix socket.
//!
//! ```sh
//! curl --unix-socket /run/grove/netmanager.sock http://netmanager/v1/status
//! ```
//!
//! [`types`] holds every body (the orchestrator and the CLI use it);
//! [`routes`] dispatches; one file per resource ([`instances`],
//! [`members`], [`workloads`], [`tokens`]); [`events`] streams membership
//! changes (`GET /v1/events`, below); [`error`] maps failures to statuses
//! in one place; [`client`] is the CLI's blocking client, [`watch`] the
//! event stream's async reader ([`chunked`] decodes for both).
//!
//! `GET /v1/events` (dynamic mode) keeps the response open and sends one
//! JSON object per line: first a snapshot of every member, then one event
//! per change, each numbered (`seq`), as the control plane applies it:
//!
//! ```sh
//! curl -N --unix-socket /run/grove/netmanager.sock http://netmanager/v1/events
//! {"seq":0,"type":"snapshot","local":{"name":"fra",…},"members":[{"name":"muc2","state":"alive",…}]}
//! {"seq":1,"type":"suspected","member":{"name":"muc2","state":"suspect",…}}
//! {"seq":2,"type":"down","member":{"name":"muc2","state":"dead",…},"reason":"confirmed"}
//! ```
//!
//! Types: `snapshot`, `joined`, `up` (back after suspect, dead or left),
//! `suspected`, `down` (`reason`: `confirmed` by its watchers, or
//! `unrefuted` for 3 s), `left`, `removed` (`reason`: `revoked`,
//! `superseded`, `pruned`), `updated` (name, subnet, endpoints or location
//! changed), `resync`. A reader more than 1024 events behind gets
//! `{"seq":…,"type":"resync","missed":…}` and then a fresh snapshot (the
//! stream stays open); a reader that reconnects also starts from a
//! snapshot, so it never needs what it missed. At most 16 streams at once
//! (503 beyond). When netmanager stops, the stream ends.

pub mod chunked;
pub mod client;
pub mod error;
mod delegations;
pub mod events;
mod instances;
mod members;
mod routes;
mod tokens;
pub mod types;
pub mod watch;
mod workloads;

pub use error::ApiError;
pub use types::{ClosestAnswer, Members};

use std::net::SocketAddr;
use std::convert::Infallible;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dns::store::MemoryDirectory;
use dns::NodeId;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use libp2p_identity::PeerId;
use overlay::Device;
use tokio::net::UnixListener;

use crate::control::admission::delegate::{Delegate, SharedAdmission};
use crate::control::admission::AdmissionHandle;
use crate::control::ControlHandle;
use crate::workload::WorkloadsHandle;
use crate::NetmanagerError;

/// What the handlers can reach.
pub struct ApiState {
    pub device: Arc<Device>,
    /// The directory DNS answers from.
    pub directory: Arc<MemoryDirectory>,
    /// This node, as the directory names it.
    pub local: NodeId,
    pub dns_stats: Arc<dns::QueryStats>,
    /// The resolver's policy and zone (status shows what `closest` picks).
    pub policy: dns::PolicyConfig,
    pub zone: dns::Zone,
    pub mode: Mode,
    /// Slots for `/v1/events` streams.
    pub streams: events::StreamSlots,
}

pub enum Mode {
    /// Peers from the config; instances written to the directory directly.
    Static,
    Dynamic(Box<DynamicState>),
}

pub struct DynamicState {
    pub control: ControlHandle,
    pub workloads: WorkloadsHandle,
    /// Set when this node admits: the authority, or a delegate.
    pub admission: SharedAdmission,
    /// On members other than the authority: installs a delegation.
    pub delegate: Option<Arc<Delegate>>,
    /// The pinned authority, this node, and its control address, for the
    /// `[control]` lines a joining node needs.
    pub authority: PeerId,
    pub local_peer: PeerId,
    pub control_addr: Option<SocketAddr>,
}

impl DynamicState {
    /// What a node joining through this one puts in its `[control]`: the
    /// authority pinned, and this node to present the token to.
    pub fn join_hint(&self) -> String {
        let addr = self.control_addr.map_or_else(|| "<this node's ip>:50103".to_owned(), |a| a.to_string());
        if self.local_peer == self.authority {
            format!("bootstrap = [\"{}@{addr}\"]", self.authority)
        } else {
            format!("authority = \"{}\"\nbootstrap = [\"{}@{addr}\"]", self.authority, self.local_peer)
        }
    }
}

impl ApiState {
    pub(crate) fn dynamic(&self, what: &'static str) -> Result<&DynamicState, ApiError> {
        match &self.mode {
            Mode::Dynamic(state) => Ok(state.as_ref()),
            Mode::Static => Err(ApiError::NotInThisMode(what)),
        }
    }

    pub(crate) fn admission(&self) -> Result<AdmissionHandle, ApiError> {
        self.dynamic("token and member management needs dynamic mode")?.admission.read().clone().ok_or(ApiError::NotInThisMode(
            "this node does not admit: ask the authority (the node started with --admit) or a cluster it delegated to",
        ))
    }
}

pub(crate) fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

impl ApiError {
    /// Status code plus `{"error": "…"}`.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        json_response(self.status(), &types::ErrorBody { error: self.to_string() })
    }
}

/// The listening side; removes its socket file when dropped.
pub struct ApiServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ApiServer {
    /// Binds `path` with mode 0600 (creating its directory 0700). The socket
    /// is created under a restrictive umask, so there is no moment in which
    /// others could connect. A stale socket left by a killed daemon is
    /// replaced; a live one is an error.
    pub fn bind(path: &Path) -> Result<ApiServer, NetmanagerError> {
        let err = |source| NetmanagerError::ControlSocket { path: path.to_owned(), source };
        crate::files::create_private_dir_for(path).map_err(err)?;
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "another netmanager is running with this control socket")));
            }
            std::fs::remove_file(path).map_err(err)?;
        }
        // SAFETY: umask only swaps the process's file-mode mask; it cannot
        // fail. This runs at start-up, before any other file is created.
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(old) };
        let listener = bound.map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        Ok(ApiServer { listener, path: path.to_owned() })
    }

    /// Serves requests until `shutdown` completes. Accept errors (out of
    /// file descriptors) back off instead of spinning.
    pub async fn serve(self, state: Arc<ApiState>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = &mut shutdown => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => {
                    backoff = Duration::from_millis(10);
                    stream
                }
                Err(e) => {
                    tracing::warn!("local API accept failed: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(routes::handle(&state, request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "local API connection failed");
                }
            });
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
