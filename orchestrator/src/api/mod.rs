//! The root's user API: HTTP/JSON with a bearer token, the only part of
//! the orchestrator that faces the underlay.
//!
//! [`types`] holds the bodies and the route table; [`RootApi`] is what the
//! server asks of the root (implemented by the root, faked in the tests);
//! [`auth`] is the token; [`server`] the transport (connections, limits,
//! shutdown); `routes` dispatches; [`http_error`] maps every failure to a
//! status in one place. The `grove` CLI's client is `cli::client`.

pub mod auth;
pub mod http_error;
pub mod root_api;
mod routes;
pub mod server;
#[cfg(test)]
pub(crate) mod tests;
pub mod types;

pub use auth::ApiToken;
pub use http_error::{status_of, ApiError};
pub use root_api::RootApi;
pub use routes::{DEFAULT_TAIL, MAX_BODY, MAX_TAIL};
pub use server::ApiServer;
