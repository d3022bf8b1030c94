//! The local API: HTTP/1.1 with JSON bodies on a root-only unix socket.
//!
//! ```sh
//! curl --unix-socket /run/grove/netmanager.sock http://netmanager/v1/status
//! ```
//!
//! `netmanager status` is its client ([`client`]). Routes live in
//! `routes.rs` (`GET /v1/status`, `GET|POST /v1/instances`,
//! `DELETE /v1/instances/<service>/<app>/<namespace>/<number>`, and in
//! dynamic mode `GET /v1/members`, `GET|POST /v1/workloads`,
//! `DELETE /v1/workloads/<service>/<app>/<namespace>/<number>`); errors
//! become HTTP statuses in one place ([`ApiError`]).

pub mod client;
mod instances;
mod members;
mod routes;
mod workloads;

pub use instances::InstanceSpec;
pub use members::{ClosestAnswer, Members};

use std::convert::Infallible;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use overlay::Device;
use tokio::net::UnixListener;

use crate::NetmanagerError;

/// What the API handlers can reach.
pub struct ApiState {
    pub device: Arc<Device>,
    /// The directory DNS answers from.
    pub directory: Arc<dns::store::MemoryDirectory>,
    /// This node's name, the default node of registered instances.
    pub local: String,
    /// Dynamic mode: where local instances are announced.
    pub control: Option<crate::control::ControlHandle>,
    /// Dynamic mode: the node's workload namespaces (taken at shutdown).
    pub workloads: Option<Arc<parking_lot::Mutex<Option<crate::workload::Workloads>>>>,
    pub dns_stats: Arc<dns::QueryStats>,
    /// The resolver's policy settings (status shows what `closest` picks).
    pub policy: dns::PolicyConfig,
}

/// An API failure, mapped to its HTTP status in [`ApiError::into_response`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no such endpoint: {0}")]
    NotFound(String),
    #[error("method {0} not allowed here")]
    MethodNotAllowed(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The one mapping from errors to the wire: status code plus
    /// `{"error": "…"}`.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = serde_json::json!({ "error": self.to_string() });
        json_response(self.status(), &body)
    }
}

pub(crate) fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The listening side; removes its socket file when dropped.
pub struct ApiServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ApiServer {
    /// Binds `path` with mode 0600 (creating its directory 0700). A stale
    /// socket left by a killed daemon is replaced; a live one is an error.
    pub fn bind(path: &Path) -> Result<ApiServer, NetmanagerError> {
        let err = |source| NetmanagerError::ControlSocket {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
            }
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another netmanager is running with this control socket",
                )));
            }
            std::fs::remove_file(path).map_err(err)?;
        }
        let listener = UnixListener::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        Ok(ApiServer {
            listener,
            path: path.to_owned(),
        })
    }

    /// Serves requests until the task is dropped.
    pub async fn serve(self, state: Arc<ApiState>) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(routes::handle(&state, request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
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

impl ApiState {
    /// Everything a Prometheus scrape reports, read fresh.
    pub fn metrics_inputs(&self) -> crate::metrics::MetricsInputs {
        let view = self.control.as_ref().map(|c| c.view()).unwrap_or_default();
        let members = view
            .members
            .iter()
            .map(|m| crate::metrics::MemberMetrics {
                name: m.name.clone(),
                peer_id: m.peer_id.clone(),
                overlay_key: Some(m.wg_public_key.clone()),
                state: match m.state.as_str() {
                    "alive" => "alive",
                    "suspect" => "suspect",
                    _ => "dead",
                },
                rtt_seconds: m.rtt_ms().map(|(ms, _)| ms / 1000.0),
                rtt_measured: m.measured_ms.is_some(),
                estimated_rtt_seconds: m.estimated_ms.map(|ms| ms / 1000.0),
                estimate_error_ratio: match (m.measured_ms, m.estimated_ms) {
                    (Some(measured), Some(estimated)) if measured > 0.0 => Some((estimated - measured).abs() / measured),
                    _ => None,
                },
            })
            .collect();
        let snapshot = self.directory.snapshot();
        let instances_served = snapshot
            .service_names()
            .map(|s| dns::Directory::service(&*snapshot, s).len() as u64)
            .sum();
        crate::metrics::MetricsInputs {
            device: self.device.status(),
            dns: self.dns_stats.snapshot(),
            dns_truncated: self.dns_stats.truncated(),
            dns_unhealthy_served: self.dns_stats.unhealthy_served(),
            members,
            membership_changes: view.changes,
            local_coordinate_error: view.local.coordinate_error,
            instances_served,
        }
    }
}
