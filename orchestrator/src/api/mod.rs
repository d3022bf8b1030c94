//! The root's user API: HTTP/JSON with a bearer token, the only part of
//! the orchestrator that faces the underlay.
//!
//! [`types`] holds the bodies and the route table; [`RootApi`] is what the
//! server asks of the root (implemented by the root, faked in the tests);
//! [`auth`] is the token; [`server`] the transport (connections, limits,
//! shutdown); `routes` dispatches; [`http_error`] maps every failure to a
//! status in one place. The `grove` CLI's client is `cli::client`.
//!
//! TLS is optional, as in Consul or Vault: [`tls`] reads a certificate
//! chain and key (PEM) into a [`ServerTls`] for [`ApiServer::with_tls`], and
//! [`self_signed`] makes one in the root's state directory on first start
//! and reuses it after (`grove root --tls-self-signed`). The handshake runs
//! per connection under the server's connection cap and its own deadline,
//! so a peer that fails or stalls it costs only its connection. Without
//! TLS the token crosses the network in clear; the root warns when it
//! listens beyond loopback. The client side (`--ca`, system roots) is
//! `cli::tls`.

pub mod auth;
pub mod http_error;
pub mod root_api;
mod routes;
pub mod self_signed;
pub mod server;
pub mod tls;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tls_tests;
pub mod types;

pub use auth::ApiToken;
pub use http_error::{status_of, ApiError};
pub use root_api::RootApi;
pub use routes::{DEFAULT_TAIL, MAX_BODY, MAX_TAIL};
pub use server::ApiServer;
pub use tls::{ServerTls, TlsError};
