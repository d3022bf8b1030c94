//! Every way a request can fail, and the one place each becomes an HTTP
//! status and an [`ErrorBody`] ([`ApiError::status`], [`status_of`]), the
//! way innernet maps its server errors.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use super::types::ErrorBody;
use crate::OrchestratorError;

/// Why a request got no answer from the root: HTTP-level problems, or the
/// root's own error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No route by that path (404).
    #[error("no route {0}: the API serves /v1/health, /v1/apps, /v1/services, /v1/clusters and /v1/nodes")]
    NoRoute(String),
    /// A route that exists, asked with another method (405).
    #[error("{method} is not allowed on {path} (allowed: {allow})")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The path asked.
        path: String,
        /// The methods the route takes, for the `Allow` header.
        allow: &'static str,
    },
    /// No `Authorization: Bearer` header (401).
    #[error("missing API token: pass --token or set GROVE_TOKEN (the root printed where its token file is)")]
    MissingToken,
    /// A bearer token that is not the root's (401).
    #[error("wrong API token")]
    WrongToken,
    /// A body beyond the limit (413).
    #[error("the request body is larger than the {limit} bytes this API accepts")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// A request the API cannot read: bad scale body, bad query, bad path encoding (400).
    #[error("{0}")]
    BadRequest(String),
    /// The root's answer (status by [`status_of`]).
    #[error(transparent)]
    Root(#[from] OrchestratorError),
}

/// The status of each of the root's errors.
pub fn status_of(error: &OrchestratorError) -> StatusCode {
    match error {
        OrchestratorError::InvalidSla(_) | OrchestratorError::BadRequest(_) => StatusCode::BAD_REQUEST,
        OrchestratorError::UnsupportedSla(_) => StatusCode::UNPROCESSABLE_ENTITY,
        OrchestratorError::NotFound { .. } => StatusCode::NOT_FOUND,
        OrchestratorError::Ambiguous { .. } => StatusCode::CONFLICT,
        OrchestratorError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OrchestratorError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// The one mapping from failures to statuses.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::MissingToken | ApiError::WrongToken => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Root(e) => status_of(e),
        }
    }

    /// `{"error": …, "violations": […]}`. An SLA error with one violation
    /// says it in `error` too; with several, `error` counts them.
    pub fn body(&self) -> ErrorBody {
        let ApiError::Root(e) = self else {
            return ErrorBody {
                error: self.to_string(),
                violations: Vec::new(),
            };
        };
        let violations: Vec<String> = e.violations().as_slice().iter().map(ToString::to_string).collect();
        let error = match e {
            OrchestratorError::InvalidSla(_) => sla_error("invalid SLA", &violations),
            OrchestratorError::UnsupportedSla(_) => sla_error("SLA not supported by grove", &violations),
            OrchestratorError::Store(source) => format!("{e}: {source}"),
            _ => e.to_string(),
        };
        ErrorBody { error, violations }
    }

    /// The response: [`ApiError::status`], [`ApiError::body`], and the
    /// headers the status calls for (RFC 6750 `WWW-Authenticate` on 401,
    /// RFC 9110 `Allow` on 405; 413 closes the connection).
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = json_response(self.status(), &self.body());
        let headers = response.headers_mut();
        match &self {
            ApiError::MissingToken => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::WrongToken => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::TooLarge { .. } => {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

fn sla_error(what: &str, violations: &[String]) -> String {
    match violations {
        [one] => format!("{what}: {one}"),
        many => format!("{what}: {} problems", many.len()),
    }
}

/// A JSON response (pretty, newline-terminated: people read it with curl).
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let mut bytes = serde_json::to_vec_pretty(body).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::violation::{Rule, Unsupported, Violation, Violations};
    use crate::sla::SlaPath;

    #[test]
    fn each_root_error_has_its_status() {
        let not_found = OrchestratorError::NotFound {
            what: "service",
            reference: "x".into(),
        };
        let ambiguous = OrchestratorError::Ambiguous {
            what: "service",
            reference: "x".into(),
            candidates: vec!["x.a.b".into(), "x.c.d".into()],
        };
        assert_eq!(status_of(&not_found), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&ambiguous), StatusCode::CONFLICT);
        assert!(ApiError::from(ambiguous).body().error.contains("x.a.b, x.c.d"));
        assert_eq!(status_of(&OrchestratorError::BadRequest("b".into())), StatusCode::BAD_REQUEST);
        assert_eq!(
            status_of(&OrchestratorError::Unavailable("u".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(ApiError::MissingToken.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn sla_errors_carry_their_violations() {
        let at = SlaPath::root().key("applications").index(0).key("memory");
        let one = Violations::new(vec![Violation::new(at.clone(), Rule::MustBePositive)]);
        let body = ApiError::from(OrchestratorError::from_violations(one)).body();
        assert_eq!(body.error, "invalid SLA: applications[0].memory: must be > 0");
        assert_eq!(body.violations, ["applications[0].memory: must be > 0"]);
        let two = Violations::new(vec![
            Violation::new(at.clone(), Rule::Unsupported(Unsupported::Storage)),
            Violation::new(at, Rule::Unsupported(Unsupported::Privileged)),
        ]);
        let error = ApiError::from(OrchestratorError::from_violations(two));
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            (error.body().error.as_str(), error.body().violations.len()),
            ("SLA not supported by grove: 2 problems", 2)
        );
    }
}
