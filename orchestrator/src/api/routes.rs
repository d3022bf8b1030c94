//! Method and path to a [`RootApi`] call: the route table of
//! [`super::types`], the token check, bodies and queries. Every failure is
//! an [`ApiError`], turned into a response in one place.

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use super::auth::ApiToken;
use super::http_error::{json_response, ApiError};
use super::types::ScaleRequest;
use super::RootApi;

/// Largest request body: an SLA of many services fits in a fraction of it.
pub const MAX_BODY: usize = 1 << 20;
/// `tail` of the logs route when none is asked for.
pub const DEFAULT_TAIL: u64 = 64 * 1024;
/// Largest `tail`: the root asks each worker for this much.
pub const MAX_TAIL: u64 = 16 << 20;
/// A body over [`MAX_BODY`] is read (and dropped) up to this many bytes
/// before the 413, so that the client, still sending, reads the answer
/// instead of a connection reset. Beyond it the connection is just closed.
const DRAIN_LIMIT: u64 = 16 << 20;
/// ... and for at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(5);

type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// One entry of the route table; references are percent-decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// `/v1/health`
    Health,
    /// `/v1/apps`
    Apps,
    /// `/v1/apps/<app>[.<namespace>]`
    App(String),
    /// `/v1/services`
    Services,
    /// `/v1/services/<ref>`
    Service(String),
    /// `/v1/services/<ref>/scale`
    Scale(String),
    /// `/v1/services/<ref>/logs`
    Logs(String),
    /// `/v1/clusters`
    Clusters,
    /// `/v1/nodes`
    Nodes,
}

impl Route {
    /// The route of `path`; [`ApiError::NoRoute`] when there is none.
    pub(super) fn parse(path: &str) -> Result<Route, ApiError> {
        let no_route = || ApiError::NoRoute(path.to_owned());
        let rest = path.strip_prefix("/v1/").ok_or_else(no_route)?;
        let segments: Vec<&str> = rest.split('/').collect();
        let reference = |raw: &str| if raw.is_empty() { Err(no_route()) } else { percent_decode(raw) };
        Ok(match segments.as_slice() {
            ["health"] => Route::Health,
            ["apps"] => Route::Apps,
            ["apps", app] => Route::App(reference(app)?),
            ["services"] => Route::Services,
            ["services", service] => Route::Service(reference(service)?),
            ["services", service, "scale"] => Route::Scale(reference(service)?),
            ["services", service, "logs"] => Route::Logs(reference(service)?),
            ["clusters"] => Route::Clusters,
            ["nodes"] => Route::Nodes,
            _ => return Err(no_route()),
        })
    }

    /// The methods the route takes (the `Allow` header of a 405).
    fn allow(&self) -> &'static str {
        match self {
            Route::Apps => "GET, POST",
            Route::App(_) | Route::Service(_) => "GET, DELETE",
            Route::Scale(_) => "POST",
            Route::Health | Route::Services | Route::Logs(_) | Route::Clusters | Route::Nodes => "GET",
        }
    }
}

/// Answers one request. Only `/v1/health` is answered without the token;
/// the token is checked before the path is looked at further, so a
/// stranger learns nothing but 401.
pub(super) async fn handle<B>(api: &dyn RootApi, token: &ApiToken, peer: SocketAddr, request: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match route(api, token, request).await {
        Ok(response) => response,
        Err(error) => {
            let status = error.status();
            if status.is_server_error() {
                tracing::warn!(%peer, %method, %path, status = status.as_u16(), "API: {error}");
            } else {
                tracing::info!(%peer, %method, %path, status = status.as_u16(), "API: {error}");
            }
            error.into_response()
        }
    }
}

async fn route<B>(api: &dyn RootApi, token: &ApiToken, request: Request<B>) -> Reply
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    let route = Route::parse(request.uri().path());
    if !matches!(route, Ok(Route::Health)) {
        authorize(token, request.headers())?;
    }
    let route = route?;
    let method = request.method().clone();
    match (&route, &method) {
        (Route::Health, &Method::GET) => ok(&serde_json::json!({ "ok": true })),
        (Route::Apps, &Method::GET) => ok(&api.apps().await),
        (Route::Apps, &Method::POST) => {
            let bytes = read_body(request).await?;
            let sla = crate::sla::read(&bytes)?;
            Ok(json_response(StatusCode::CREATED, &api.deploy(sla).await?))
        }
        (Route::App(app), &Method::GET) => ok(&api.app(app).await?),
        (Route::App(app), &Method::DELETE) => ok(&api.remove_app(app).await?),
        (Route::Services, &Method::GET) => ok(&api.services().await),
        (Route::Service(service), &Method::GET) => ok(&api.service(service).await?),
        (Route::Service(service), &Method::DELETE) => ok(&api.remove_service(service).await?),
        (Route::Scale(service), &Method::POST) => {
            let bytes = read_body(request).await?;
            let scale: ScaleRequest = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::BadRequest(format!("a scale request is {{\"instances\": N}}: {e}")))?;
            ok(&api.scale(service, scale.instances).await?)
        }
        (Route::Logs(service), &Method::GET) => {
            let tail = tail(request.uri().query())?;
            ok(&api.logs(service, tail).await?)
        }
        (Route::Clusters, &Method::GET) => ok(&api.clusters().await),
        (Route::Nodes, &Method::GET) => ok(&api.nodes().await),
        (route, _) => Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: request.uri().path().to_owned(),
            allow: route.allow(),
        }),
    }
}

fn ok(body: &impl serde::Serialize) -> Reply {
    Ok(json_response(StatusCode::OK, body))
}

/// `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is
/// case-insensitive, RFC 9110 §11.1).
fn authorize(token: &ApiToken, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim())
        .filter(|credentials| !credentials.is_empty());
    match presented {
        None => Err(ApiError::MissingToken),
        Some(presented) if token.matches(presented) => Ok(()),
        Some(_) => Err(ApiError::WrongToken),
    }
}

/// The body, refused beyond [`MAX_BODY`]: at once when `Content-Length`
/// says it is far too large, else after draining it (see [`DRAIN_LIMIT`]).
async fn read_body<B>(request: Request<B>) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    let too_large = ApiError::TooLarge { limit: MAX_BODY };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > DRAIN_LIMIT) {
        return Err(too_large);
    }
    let mut body = std::pin::pin!(request.into_body());
    let mut collected = Vec::new();
    let mut seen: u64 = 0;
    let mut over = declared.is_some_and(|length| length > MAX_BODY as u64);
    let drain_until = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        let frame = if over {
            match tokio::time::timeout_at(drain_until, body.frame()).await {
                Ok(frame) => frame,
                Err(_) => break,
            }
        } else {
            body.frame().await
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len() as u64;
        if !over && collected.len() + data.len() > MAX_BODY {
            over = true;
            collected = Vec::new();
        }
        if !over {
            collected.extend_from_slice(&data);
        }
        if seen > DRAIN_LIMIT {
            break;
        }
    }
    if over {
        return Err(too_large);
    }
    Ok(Bytes::from(collected))
}

/// `tail=<bytes>` of the logs route; [`DEFAULT_TAIL`] when absent.
pub(super) fn tail(query: Option<&str>) -> Result<u64, ApiError> {
    let Some(text) = query.unwrap_or_default().split('&').find_map(|pair| pair.strip_prefix("tail=")) else {
        return Ok(DEFAULT_TAIL);
    };
    match text.parse::<u64>() {
        Ok(tail) if tail <= MAX_TAIL => Ok(tail),
        Ok(_) => Err(ApiError::BadRequest(format!("tail={text}: at most {MAX_TAIL} bytes"))),
        Err(_) => Err(ApiError::BadRequest(format!(
            "tail={text:?}: must be a number of bytes, e.g. tail=65536"
        ))),
    }
}

/// `%XX` escapes of a path segment (RFC 3986 §2.1), as UTF-8.
fn percent_decode(segment: &str) -> Result<String, ApiError> {
    let bad = || ApiError::BadRequest(format!("{segment:?} is not a well-formed path segment"));
    let raw = segment.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table() {
        assert_eq!(Route::parse("/v1/health").ok(), Some(Route::Health));
        assert_eq!(Route::parse("/v1/apps/cam.default").ok(), Some(Route::App("cam.default".into())));
        assert_eq!(Route::parse("/v1/services/ms2/scale").ok(), Some(Route::Scale("ms2".into())));
        assert_eq!(Route::parse("/v1/services/a%2Eb/logs").ok(), Some(Route::Logs("a.b".into())));
        for path in [
            "/",
            "/v1",
            "/v1/",
            "/v1/apps/",
            "/v2/apps",
            "/v1/apps/a/b",
            "/v1/services/a/start",
            "/v1/healthz",
        ] {
            assert!(matches!(Route::parse(path), Err(ApiError::NoRoute(_))), "{path}");
        }
        assert!(matches!(Route::parse("/v1/apps/%zz"), Err(ApiError::BadRequest(_))));
        assert!(matches!(Route::parse("/v1/apps/%ff"), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn tails() {
        assert_eq!(tail(None).ok(), Some(DEFAULT_TAIL));
        assert_eq!(tail(Some("x=1&tail=100")).ok(), Some(100));
        assert!(tail(Some("tail=-1")).is_err());
        assert!(tail(Some(&format!("tail={}", MAX_TAIL + 1))).is_err());
    }

    #[test]
    fn bearer_tokens() {
        let token = ApiToken::from_secret("s3cret");
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, value.parse().expect("header"));
            h
        };
        assert!(authorize(&token, &headers("Bearer s3cret")).is_ok());
        assert!(authorize(&token, &headers("bearer  s3cret ")).is_ok());
        assert!(matches!(authorize(&token, &headers("Bearer other")), Err(ApiError::WrongToken)));
        assert!(matches!(authorize(&token, &headers("Basic s3cret")), Err(ApiError::MissingToken)));
        assert!(matches!(authorize(&token, &HeaderMap::new()), Err(ApiError::MissingToken)));
    }
}
