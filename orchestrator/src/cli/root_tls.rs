//! `grove root`'s TLS flags: a certificate and key of the operator's, or
//! one the root makes for itself, or plain HTTP (with a warning when the
//! token would cross a network in clear).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::api::{self_signed, ServerTls, TlsError};

/// TLS for the user API.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "TLS for the user API")]
pub struct TlsArgs {
    /// Serve the API over HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", env = "GROVE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC).
    #[arg(long, value_name = "FILE", env = "GROVE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate the root makes on first start and reuses
    /// (<state-dir>/api-cert.pem, key api-key.pem 0600); clients pass --ca with it.
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Another name or IP address for the self-signed certificate (repeatable;
    /// localhost, loopback, the host name and a specific --api address are always in it).
    #[arg(long, value_name = "NAME|IP")]
    pub tls_san: Vec<String>,
}

/// How the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP.
    Plain,
    /// The operator's certificate and key.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// Its key.
        key: PathBuf,
    },
    /// A self-signed certificate in the state directory, with these extra names.
    SelfSigned {
        /// `--tls-san`.
        extra_names: Vec<String>,
    },
}

/// A combination of TLS flags that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsArgsError {
    /// `--tls-cert` alone.
    #[error("--tls-cert needs --tls-key: pass the certificate's private key too (or neither, for plain HTTP)")]
    CertWithoutKey,
    /// `--tls-key` alone.
    #[error("--tls-key needs --tls-cert: pass the certificate the key belongs to too (or neither, for plain HTTP)")]
    KeyWithoutCert,
    /// Both kinds of certificate.
    #[error("--tls-self-signed makes its own certificate: pass it or --tls-cert/--tls-key, not both")]
    Both,
    /// Names for a certificate that is not made.
    #[error("--tls-san names go into the self-signed certificate: it needs --tls-self-signed")]
    SanWithoutSelfSigned,
}

impl TlsArgs {
    /// What the flags ask for: both files or neither, and not with
    /// `--tls-self-signed`.
    pub fn mode(&self) -> Result<TlsMode, TlsArgsError> {
        let files = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (Some(_), None) => return Err(TlsArgsError::CertWithoutKey),
            (None, Some(_)) => return Err(TlsArgsError::KeyWithoutCert),
            (None, None) => None,
        };
        match (files, self.tls_self_signed) {
            (Some(_), true) => Err(TlsArgsError::Both),
            (Some((cert, key)), false) if self.tls_san.is_empty() => Ok(TlsMode::Files { cert, key }),
            (None, true) => Ok(TlsMode::SelfSigned {
                extra_names: self.tls_san.clone(),
            }),
            (None, false) if self.tls_san.is_empty() => Ok(TlsMode::Plain),
            _ => Err(TlsArgsError::SanWithoutSelfSigned),
        }
    }
}

impl TlsMode {
    /// The server's TLS (`None` for plain HTTP), loading or making the
    /// certificate, and saying in the log what a client needs to know:
    /// the fingerprint, and for a self-signed one the file to pass as `--ca`.
    pub fn server_tls(&self, state_dir: &Path, api: SocketAddr) -> Result<Option<ServerTls>, TlsError> {
        match self {
            TlsMode::Plain => {
                if let Some(warning) = plain_http_warning(api) {
                    tracing::warn!("{warning}");
                }
                Ok(None)
            }
            TlsMode::Files { cert, key } => {
                let tls = ServerTls::from_files(cert, key)?;
                tracing::info!(cert = %cert.display(), sha256 = tls.fingerprint(), "API serves HTTPS");
                Ok(Some(tls))
            }
            TlsMode::SelfSigned { extra_names } => {
                let names = self_signed::default_names(api, extra_names);
                let (tls, files) = self_signed::load_or_create(state_dir, &names)?;
                let how = if files.created {
                    format!("made a self-signed certificate for {}", names.join(", "))
                } else {
                    "reusing the self-signed certificate (delete it and its key to make a new one)".to_owned()
                };
                tracing::info!(
                    cert = %files.cert.display(),
                    sha256 = tls.fingerprint(),
                    "API serves HTTPS: {how}; clients pass --ca {}",
                    files.cert.display()
                );
                Ok(Some(tls))
            }
        }
    }
}

/// The warning for plain HTTP on an address other machines can reach:
/// the bearer token then crosses the network readable by anyone on the path.
pub fn plain_http_warning(api: SocketAddr) -> Option<String> {
    (!api.ip().is_loopback()).then(|| {
        format!(
            "the user API serves plain HTTP on {api}: the API token travels in clear; \
             use --tls-cert/--tls-key or --tls-self-signed, or bind --api to 127.0.0.1"
        )
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn tls(args: &[&str]) -> Result<TlsMode, TlsArgsError> {
        let cli = Cli::try_parse_from(["grove", "root"].iter().chain(args)).expect("parses");
        match cli.command {
            Command::Root(root) => root.tls.mode(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn both_files_or_neither_and_not_with_self_signed() {
        assert_eq!(tls(&[]), Ok(TlsMode::Plain));
        assert_eq!(
            tls(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]),
            Ok(TlsMode::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        assert_eq!(
            tls(&["--tls-self-signed", "--tls-san", "root.example", "--tls-san", "10.0.0.5"]),
            Ok(TlsMode::SelfSigned {
                extra_names: vec!["root.example".into(), "10.0.0.5".into()]
            })
        );
        let cert_only = tls(&["--tls-cert", "c.pem"]).expect_err("no key");
        assert!(cert_only.to_string().starts_with("--tls-cert needs --tls-key"), "{cert_only}");
        let key_only = tls(&["--tls-key", "k.pem"]).expect_err("no cert");
        assert!(key_only.to_string().starts_with("--tls-key needs --tls-cert"), "{key_only}");
        assert_eq!(
            tls(&["--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"]),
            Err(TlsArgsError::Both)
        );
        assert_eq!(tls(&["--tls-san", "x"]), Err(TlsArgsError::SanWithoutSelfSigned));
    }

    #[test]
    fn plain_http_warns_off_loopback_only() {
        assert_eq!(plain_http_warning("127.0.0.1:10000".parse().expect("addr")), None);
        assert_eq!(plain_http_warning("[::1]:10000".parse().expect("addr")), None);
        let warning = plain_http_warning("0.0.0.0:10000".parse().expect("addr")).expect("warns");
        assert!(warning.contains("the API token travels in clear"), "{warning}");
    }
}
