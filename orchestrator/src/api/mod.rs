//! The root's user API: the JSON bodies ([`types`]), the operations the
//! server calls ([`RootApi`], implemented by the root), the bearer token
//! ([`auth`]) and the HTTP server ([`server`], [`routes`]).

pub mod auth;
pub mod root_api;
pub mod routes;
pub mod server;
#[cfg(test)]
mod tests;
pub mod types;

pub use auth::ApiToken;
pub use root_api::RootApi;
pub use server::ApiServer;
