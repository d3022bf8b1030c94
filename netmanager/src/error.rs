//! netmanager's library error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetmanagerError {
    #[error("cannot read config {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} already exists; refusing to overwrite a node key (move it away first, or use `netmanager pubkey --key {0}` to see its public key)")]
    KeyExists(PathBuf),
    #[error("config {path} is invalid: {message}")]
    InvalidConfig { path: PathBuf, message: String },
    #[error(transparent)]
    Overlay(#[from] overlay::OverlayError),
    #[error("DNS: {0}")]
    Dns(dns::DnsError),
    #[error("control socket {path}: {source}")]
    ControlSocket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control plane: {0}")]
    Control(#[from] crate::control::ControlError),
    #[error("startup: {0}")]
    Startup(String),
    #[error("{0}")]
    Usage(String),
    #[error("control socket {path} answered with something unexpected: {message}")]
    ControlProtocol { path: PathBuf, message: String },
}
