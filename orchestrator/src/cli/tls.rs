//! TLS on the `grove` client's side: which certificates it trusts, the
//! handshake over a blocking socket, and handshake failures told as what
//! the user should do about them.
//!
//! With `--ca FILE` the client trusts that file only (a CA, or the root's
//! own self-signed certificate), as `consul`/`nomad`/`vault` do with their
//! CA flags. Without it, the system's CA bundle, if this machine has one
//! in a usual place. There is no "skip verification" switch: the bearer
//! token would go to whoever answers.

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, RootCertStore, StreamOwned};

use crate::api::tls::{provider, read_certificates, TlsError};

/// Where distributions keep the system's CA bundle (the list Go's
/// crypto/x509 uses on Linux). `SSL_CERT_FILE` comes first.
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Why no TLS client could be set up.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The `--ca` file is unusable.
    #[error("the CA file named by {origin}: {source}")]
    Ca {
        /// Who named it ("the command line", ...).
        origin: String,
        /// What is wrong with it (boxed: it is large, and rare).
        source: Box<TlsError>,
    },
    /// No `--ca` and no system bundle.
    #[error(
        "no CA certificates to check the root's certificate with: this machine has no CA bundle; \
         pass --ca with the root's certificate (a root started with --tls-self-signed wrote it to <state-dir>/api-cert.pem)"
    )]
    NoRoots,
    /// rustls refused the configuration (not expected with ring).
    #[error("setting up TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// What the client trusts, ready to connect with.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    /// For messages: "the CA file /x (named by the command line)".
    trusted: String,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls").field("trusted", &self.trusted).finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts exactly the certificates in `path`.
    pub fn from_ca_file(path: &Path, origin: &str) -> Result<ClientTls, TrustError> {
        let ca_error = |source| TrustError::Ca {
            origin: origin.to_owned(),
            source: Box::new(source),
        };
        let mut roots = RootCertStore::empty();
        for certificate in read_certificates(path).map_err(ca_error)? {
            roots.add(certificate).map_err(|source| {
                ca_error(TlsError::BadCa {
                    path: path.to_owned(),
                    source,
                })
            })?;
        }
        ClientTls::with_roots(roots, format!("the CA file {} (named by {origin})", path.display()))
    }

    /// Trusts the system's CA bundle: `$SSL_CERT_FILE`, else the first of
    /// the usual places that holds certificates.
    pub fn system() -> Result<ClientTls, TrustError> {
        let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
        for path in from_env.into_iter().chain(SYSTEM_BUNDLES.iter().map(PathBuf::from)) {
            let Ok(certificates) = read_certificates(&path) else { continue };
            let mut roots = RootCertStore::empty();
            // A bundle may hold a certificate webpki cannot use as an
            // anchor; the others still count.
            roots.add_parsable_certificates(certificates);
            if !roots.is_empty() {
                return ClientTls::with_roots(roots, format!("the system's CA certificates ({})", path.display()));
            }
        }
        Err(TrustError::NoRoots)
    }

    fn with_roots(roots: RootCertStore, trusted: String) -> Result<ClientTls, TrustError> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ClientTls {
            config: Arc::new(config),
            trusted,
        })
    }

    /// What is trusted, for messages.
    pub fn trusted(&self) -> &str {
        &self.trusted
    }

    /// Shakes hands over `tcp` with a server that must prove it is `host`.
    /// The socket's timeouts apply. A failure is the socket's error, or
    /// [`Handshake`] for what TLS refused.
    pub fn connect(&self, host: &str, mut tcp: TcpStream) -> Result<StreamOwned<ClientConnection, TcpStream>, Handshake> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| Handshake::Io(io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?} is not a TLS server name"))))?;
        let mut connection = ClientConnection::new(self.config.clone(), name).map_err(Handshake::Tls)?;
        // Done here rather than on the first write, so that a refused
        // certificate is told as such and not as a failed request.
        while connection.is_handshaking() {
            connection.complete_io(&mut tcp).map_err(Handshake::from_io)?;
        }
        Ok(StreamOwned::new(connection, tcp))
    }
}

/// A failed handshake.
#[derive(Debug)]
pub enum Handshake {
    /// The socket failed (reset, timed out).
    Io(io::Error),
    /// TLS refused: the certificate, the protocol, an alert.
    Tls(rustls::Error),
}

impl Handshake {
    /// rustls reports its own errors through `io::Error` (InvalidData).
    fn from_io(error: io::Error) -> Handshake {
        match error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(tls) => Handshake::Tls(tls.clone()),
            None => Handshake::Io(error),
        }
    }
}

/// What went wrong in a handshake with the root at `url`, and what to do,
/// when `trusted` was what the client trusted.
pub fn explain(url: &str, trusted: &str, error: &rustls::Error) -> String {
    use rustls::{CertificateError, InvalidMessage};
    let pass_ca = "pass --ca with the root's certificate (or the CA that signed it); \
                   a root started with --tls-self-signed wrote it to <state-dir>/api-cert.pem and logged its path";
    match error {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => format!(
            "the root at {url} presented a certificate for other names ({error}); \
             reach the root by one of those names, or {pass_ca} \
             (a --tls-self-signed root takes more names with --tls-san once its api-cert.pem is deleted)"
        ),
        rustls::Error::InvalidCertificate(_) => format!(
            "the root at {url} presented a certificate not signed by {trusted} ({error}); {pass_ca}"
        ),
        rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType | InvalidMessage::UnknownProtocolVersion) => {
            format!("the root at {url} does not answer TLS: is it serving plain HTTP? then use an http:// URL")
        }
        other => format!("the TLS handshake with the root at {url} failed: {other}"),
    }
}
