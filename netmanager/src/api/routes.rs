//! One function per endpoint; `handle` dispatches on method and path.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::{json_response, ApiError, ApiState};

/// Routes a request; every failure goes through [`ApiError::into_response`].
pub(super) async fn handle(state: &ApiState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let result = match (request.method(), request.uri().path()) {
        (&Method::GET, "/v1/status") => Ok(status(state)),
        (_, "/v1/status") => Err(ApiError::MethodNotAllowed(request.method().to_string())),
        (_, path) => Err(ApiError::NotFound(path.to_owned())),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// `GET /v1/status`: the data plane, like `wg show`.
fn status(state: &ApiState) -> Response<Full<Bytes>> {
    json_response(StatusCode::OK, &state.device.status())
}
