//! Method and path to a [`super::RootApi`] call; errors to status codes.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::server::Shared;
use super::types::{ErrorBody, ScaleRequest};
use crate::OrchestratorError;

/// Largest body: an SLA of many services.
pub const MAX_BODY: usize = 1 << 20;
/// `tail` when the logs route is not given one.
const DEFAULT_TAIL: u64 = 64 * 1024;

type Reply = Response<Full<Bytes>>;

fn json(status: StatusCode, body: &impl Serialize) -> Reply {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, text: impl Into<String>) -> Reply {
    json(status, &ErrorBody { error: text.into(), violations: Vec::new() })
}

/// The status an error answers with.
pub fn status_of(e: &OrchestratorError) -> StatusCode {
    match e {
        OrchestratorError::InvalidSla(_) | OrchestratorError::BadRequest(_) => StatusCode::BAD_REQUEST,
        OrchestratorError::UnsupportedSla(_) => StatusCode::UNPROCESSABLE_ENTITY,
        OrchestratorError::NotFound { .. } => StatusCode::NOT_FOUND,
        OrchestratorError::Ambiguous { .. } => StatusCode::CONFLICT,
        OrchestratorError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OrchestratorError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn failed(e: OrchestratorError) -> Reply {
    let status = status_of(&e);
    if status.is_server_error() {
        tracing::warn!("API: {e}");
    }
    let mut text = e.to_string();
    if let OrchestratorError::Store(source) = &e {
        text = format!("{text}: {source}");
    }
    json(status, &ErrorBody { error: text, violations: e.violations().as_slice().iter().map(|v| v.to_string()).collect() })
}

fn answer<T: Serialize>(status: StatusCode, result: Result<T, OrchestratorError>) -> Reply {
    match result {
        Ok(body) => json(status, &body),
        Err(e) => failed(e),
    }
}

pub(super) async fn handle(shared: &Shared, request: Request<Incoming>) -> Reply {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    tracing::debug!(%method, %path, "API request");
    if path == "/v1/health" {
        return json(StatusCode::OK, &serde_json::json!({ "ok": true }));
    }
    let presented = request.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => {
            let mut reply = error(StatusCode::UNAUTHORIZED, "missing API token: pass --token or --token-file, or set GROVE_TOKEN (the root logs where its token file is)");
            reply.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Bearer"));
            return reply;
        }
        Some(token) if !shared.token.matches(token.trim()) => {
            tracing::info!(%path, "API request with a wrong token refused");
            let mut reply = error(StatusCode::UNAUTHORIZED, "wrong API token");
            reply.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Bearer error=\"invalid_token\""));
            return reply;
        }
        Some(_) => {}
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let api = &shared.api;
    match (&method, segments.as_slice()) {
        (&Method::POST, ["v1", "apps"]) => match body(request).await {
            Ok(bytes) => match crate::sla::read(&bytes) {
                Ok(sla) => answer(StatusCode::CREATED, api.deploy(sla).await),
                Err(e) => failed(e),
            },
            Err(reply) => reply,
        },
        (&Method::GET, ["v1", "apps"]) => json(StatusCode::OK, &api.apps().await),
        (&Method::GET, ["v1", "apps", app]) => answer(StatusCode::OK, api.app(app).await),
        (&Method::DELETE, ["v1", "apps", app]) => answer(StatusCode::OK, api.remove_app(app).await),
        (&Method::GET, ["v1", "services"]) => json(StatusCode::OK, &api.services().await),
        (&Method::GET, ["v1", "services", service]) => answer(StatusCode::OK, api.service(service).await),
        (&Method::DELETE, ["v1", "services", service]) => answer(StatusCode::OK, api.remove_service(service).await),
        (&Method::POST, ["v1", "services", service, "scale"]) => match body(request).await {
            Ok(bytes) => match serde_json::from_slice::<ScaleRequest>(&bytes) {
                Ok(scale) => answer(StatusCode::OK, api.scale(service, scale.instances).await),
                Err(e) => error(StatusCode::BAD_REQUEST, format!("a scale request is {{\"instances\": N}}: {e}")),
            },
            Err(reply) => reply,
        },
        (&Method::GET, ["v1", "services", service, "logs"]) => match tail(&query) {
            Ok(tail) => answer(StatusCode::OK, api.logs(service, tail).await),
            Err(reply) => reply,
        },
        (&Method::GET, ["v1", "clusters"]) => json(StatusCode::OK, &api.clusters().await),
        (&Method::GET, ["v1", "nodes"]) => json(StatusCode::OK, &api.nodes().await),
        (_, ["v1", "apps" | "services" | "clusters" | "nodes", ..]) => error(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {path}")),
        _ => error(StatusCode::NOT_FOUND, format!("no route {path}; see `grove --help` or the route table in the README")),
    }
}

async fn body(request: Request<Incoming>) -> Result<Bytes, Reply> {
    Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|_| error(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {MAX_BODY} bytes")))
}

#[allow(clippy::result_large_err)] // a response, built once on the error path
fn tail(query: &str) -> Result<u64, Reply> {
    match query.split('&').find_map(|kv| kv.strip_prefix("tail=")) {
        None => Ok(DEFAULT_TAIL),
        Some(text) => text.parse().map_err(|_| error(StatusCode::BAD_REQUEST, format!("tail={text}: a number of bytes"))),
    }
}
