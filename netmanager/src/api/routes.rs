//! One function per endpoint; `handle` dispatches on method and path.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::{instances, json_response, members, workloads, ApiError, ApiState};

/// Largest request body accepted: room for a batch of ~50,000 instances
/// (the socket is root-only; the limit guards memory, not access).
const MAX_BODY: usize = 8 << 20;

/// Routes a request; every failure goes through [`ApiError::into_response`].
pub(super) async fn handle(state: &ApiState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let result = match (&method, path.as_str()) {
        (&Method::GET, "/v1/status") => Ok(json_response(StatusCode::OK, &state.device.status())),
        (&Method::GET, "/v1/instances") => Ok(json_response(StatusCode::OK, &instances::list(state))),
        (&Method::POST, "/v1/instances") => match body(request).await {
            Ok(bytes) => instances::register(state, &bytes).await.map(|i| json_response(StatusCode::CREATED, &i)),
            Err(e) => Err(e),
        },
        (&Method::DELETE, p) if p.starts_with("/v1/instances/") => instances::deregister(state, &p["/v1/instances/".len()..])
            .await
            .map(|i| json_response(StatusCode::OK, &i)),
        (&Method::GET, "/v1/members") => members::list(state).map(|m| json_response(StatusCode::OK, &m)),
        (&Method::GET, "/v1/workloads") => workloads::list(state).map(|w| json_response(StatusCode::OK, &w)),
        (&Method::POST, "/v1/workloads") => match body(request).await {
            Ok(bytes) => workloads::create(state, &bytes).await.map(|w| json_response(StatusCode::CREATED, &w)),
            Err(e) => Err(e),
        },
        (&Method::DELETE, p) if p.starts_with("/v1/workloads/") => workloads::delete(state, &p["/v1/workloads/".len()..])
            .await
            .map(|w| json_response(StatusCode::OK, &w)),
        (_, "/v1/status" | "/v1/instances" | "/v1/members" | "/v1/workloads") => {
            Err(ApiError::MethodNotAllowed(method.to_string()))
        }
        (_, p) => Err(ApiError::NotFound(p.to_owned())),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// The request body, refused beyond [`MAX_BODY`].
async fn body(request: Request<Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| ApiError::BadRequest(format!("body: {e} (at most {MAX_BODY} bytes)")))
}
