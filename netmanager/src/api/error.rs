//! Every local API failure, typed, and the one place each becomes an HTTP
//! status ([`ApiError::status`]), the way innernet maps its server errors.

use hyper::StatusCode;

use crate::control::admission::AdmissionError;
use crate::control::ControlError;
use crate::workload::WorkloadError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    #[error("method {0} not allowed here")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotInThisMode(&'static str),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Dns(#[from] dns::DnsError),
    #[error("{0}")]
    Control(#[from] ControlError),
    #[error("{0}")]
    Workload(#[from] WorkloadError),
    #[error("{0}")]
    Admission(#[from] AdmissionError),
    #[error("{0}")]
    Conflict(String),
    #[error("no instance {0}")]
    UnknownInstance(Box<dns::InstanceKey>),
    #[error("{0} event streams are open already; close one or try again later")]
    TooManyStreams(usize),
}

impl ApiError {
    /// The one mapping from errors to HTTP statuses. A stopped control plane
    /// or authority is 503 (try again), a request that names something
    /// that does not exist 404, one that breaks a rule 422, malformed 400.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoRoute(_) | ApiError::NotInThisMode(_) | ApiError::UnknownInstance(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) | ApiError::Dns(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyStreams(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Control(e) => match e {
                ControlError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
                ControlError::UnknownInstance(_) => StatusCode::NOT_FOUND,
                ControlError::OutsideSubnet { .. }
                | ControlError::NotUniqueLocal { .. }
                | ControlError::NoAddress(_)
                | ControlError::TooManyInstances { .. }
                | ControlError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Workload(e) => match e {
                WorkloadError::Exists(_) => StatusCode::CONFLICT,
                WorkloadError::NotFound(_) => StatusCode::NOT_FOUND,
                WorkloadError::InvalidName(_) => StatusCode::BAD_REQUEST,
                WorkloadError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Admission(e) => match e {
                AdmissionError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
                AdmissionError::NoSuchToken(_) | AdmissionError::NoSuchMember(_) => StatusCode::NOT_FOUND,
                AdmissionError::BadTokenId(_) | AdmissionError::TtlTooLarge | AdmissionError::RevokeSelf => StatusCode::BAD_REQUEST,
                AdmissionError::TooManyTokens(_) | AdmissionError::TokenCollision | AdmissionError::Reserve { .. } => StatusCode::CONFLICT,
                AdmissionError::NotDelegable(_)
                | AdmissionError::NotOurDelegation { .. }
                | AdmissionError::NotAuthority { .. }
                | AdmissionError::DelegationShape { .. }
                | AdmissionError::PoolShape { .. }
                | AdmissionError::PoolExhausted { .. }
                | AdmissionError::Signed(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_control_plane_is_503_not_400() {
        assert_eq!(ApiError::Control(ControlError::Stopped).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::Workload(WorkloadError::Stopped).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::Admission(AdmissionError::Stopped).status(), StatusCode::SERVICE_UNAVAILABLE);
        let key = dns::InstanceKey::new("ms2", "cam", "default", 1).expect("key");
        assert_eq!(ApiError::Control(ControlError::UnknownInstance(Box::new(key))).status(), StatusCode::NOT_FOUND);
        assert_eq!(ApiError::Control(ControlError::NoAddress(Box::new(key))).status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
