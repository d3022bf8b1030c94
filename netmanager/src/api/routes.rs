//! Method and path to handler; every failure goes through
//! [`ApiError::into_response`].

use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::events::EventBody;
use super::{delegations, events, instances, json_response, members, tokens, workloads, ApiError, ApiState};

/// A whole JSON body, or the event stream.
pub(super) type ApiBody = Either<Full<Bytes>, EventBody>;

/// Largest request body accepted: room for a batch of a few thousand
/// instances (the socket is root-only; the limit guards memory).
const MAX_BODY: usize = 4 << 20;

type Reply = Result<Response<Full<Bytes>>, ApiError>;

fn ok(status: StatusCode, body: &impl serde::Serialize) -> Reply {
    Ok(json_response(status, body))
}

pub(super) async fn handle(state: &ApiState, request: Request<Incoming>) -> Response<ApiBody> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if path == "/v1/events" {
        let opened = match method {
            Method::GET => events::open(state),
            _ => Err(ApiError::MethodNotAllowed(method.to_string())),
        };
        return match opened {
            Ok(stream) => stream.map(Either::Right),
            Err(e) => e.into_response().map(Either::Left),
        };
    }
    route(state, &method, &path, request).await.unwrap_or_else(ApiError::into_response).map(Either::Left)
}

async fn route(state: &ApiState, method: &Method, path: &str, request: Request<Incoming>) -> Reply {
    let (collection, rest) = match path.strip_prefix("/v1/") {
        Some(tail) => tail.split_once('/').map_or((tail, None), |(c, r)| (c, Some(r))),
        None => return Err(ApiError::NoRoute(path.to_owned())),
    };
    match (method, collection, rest) {
        (&Method::GET, "status", None) => ok(StatusCode::OK, &state.device.status()),
        (&Method::GET, "instances", None) => ok(StatusCode::OK, &instances::list(state)),
        (&Method::POST, "instances", None) => ok(StatusCode::CREATED, &instances::register(state, &body(request).await?).await?),
        (&Method::DELETE, "instances", Some(key)) => ok(StatusCode::OK, &instances::deregister(state, key).await?),
        (&Method::GET, "members", None) => ok(StatusCode::OK, &members::list(state)?),
        (&Method::DELETE, "members", Some(who)) => ok(StatusCode::OK, &members::remove(state, who).await?),
        (&Method::GET, "workloads", None) => ok(StatusCode::OK, &workloads::list(state)?),
        (&Method::POST, "workloads", None) => ok(StatusCode::CREATED, &workloads::create(state, &body(request).await?).await?),
        (&Method::DELETE, "workloads", Some(key)) => ok(StatusCode::OK, &workloads::delete(state, key).await?),
        (&Method::GET, "tokens", None) => ok(StatusCode::OK, &tokens::list(state).await?),
        (&Method::POST, "tokens", None) => ok(StatusCode::CREATED, &tokens::create(state, &body(request).await?).await?),
        (&Method::DELETE, "tokens", Some(id)) => ok(StatusCode::OK, &tokens::revoke(state, id).await?),
        (&Method::GET, "grants", None) => ok(StatusCode::OK, &tokens::grants(state).await?),
        (&Method::GET, "delegations", None) => ok(StatusCode::OK, &delegations::list(state).await?),
        (&Method::POST, "delegations", None) => ok(StatusCode::CREATED, &delegations::issue(state, &body(request).await?).await?),
        (&Method::GET, "delegation", None) => ok(StatusCode::OK, &delegations::current(state)?),
        (&Method::PUT, "delegation", None) => ok(StatusCode::OK, &delegations::install(state, &body(request).await?).await?),
        (_, "status" | "instances" | "members" | "workloads" | "tokens" | "grants" | "delegations" | "delegation", _) => Err(ApiError::MethodNotAllowed(method.to_string())),
        _ => Err(ApiError::NoRoute(path.to_owned())),
    }
}

/// The request body, refused beyond [`MAX_BODY`].
async fn body(request: Request<Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|_| ApiError::TooLarge(MAX_BODY))
}

/// Decodes a JSON body, naming what was expected.
pub(super) fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("{what} JSON: {e}")))
}
