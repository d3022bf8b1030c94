//! TLS for the user API: a certificate chain and its key read from PEM
//! files, turned into the acceptor the server wraps each connection in.
//!
//! What goes wrong here goes wrong at start-up, in front of an operator,
//! so every error names the file and says what was expected instead of
//! passing on a parser's terse "no items found". The certificate's SHA-256
//! fingerprint is kept for the log, so that a user can compare it with
//! `openssl x509 -noout -fingerprint -sha256 -in <cert>` before trusting
//! it. ring is the crypto provider, named explicitly rather than taken
//! from a process default that another crate could change.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::{self, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// What can be wrong with the API's certificate, key or CA files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not PEM, or a PEM block in it is broken.
    #[error("{} is not a valid PEM file: {detail}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        detail: String,
    },
    /// No `CERTIFICATE` block in the file.
    #[error("{} holds no certificate: expected PEM blocks `-----BEGIN CERTIFICATE-----`{hint}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the file holds instead, if that helps (`; it holds a private key ...`).
        hint: String,
    },
    /// No private key block in the file.
    #[error(
        "{} holds no private key: expected a PEM block `-----BEGIN PRIVATE KEY-----` (PKCS#8), \
         `RSA PRIVATE KEY` or `EC PRIVATE KEY`{hint}",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the file holds instead, if that helps.
        hint: String,
    },
    /// The key is not the one the certificate was issued for.
    #[error("the private key in {} does not belong to the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the pair (an unsupported key type, a broken key).
    #[error("the certificate {} and key {} cannot be used: {source}", cert.display(), key.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// A certificate in a CA file cannot be a trust anchor.
    #[error("{} holds a certificate that cannot be trusted as a CA: {source}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// Group or others may read the private key.
    #[error("the key file {path} has mode {mode:04o}: group or others can read it; run `chmod 600 {path}`", path = path.display())]
    KeyReadable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Making a self-signed certificate failed.
    #[error("making a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing a generated certificate or key failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// The crypto provider of every TLS config in grove.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate and key the API serves with.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    fingerprint: String,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").field("sha256", &self.fingerprint).finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads a certificate chain (leaf first) and its private key, both PEM.
    pub fn from_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let chain = read_certificates(cert)?;
        let key_der = read_private_key(key)?;
        ServerTls::new(chain, key_der).map_err(|source| match source {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            },
            source => TlsError::Rejected {
                cert: cert.to_owned(),
                key: key.to_owned(),
                source,
            },
        })
    }

    /// From parsed DER. rustls checks that the key matches the leaf.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<ServerTls, rustls::Error> {
        let fingerprint = chain.first().map(|leaf| fingerprint(leaf)).unwrap_or_default();
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // The server speaks HTTP/1.1 only; saying so lets a client that
        // offers h2 pick the protocol that works.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            fingerprint,
        })
    }

    /// The leaf certificate's SHA-256, `AB:CD:...` as openssl prints it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// SHA-256 of a certificate's DER, upper-case hex in pairs joined by `:`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let pairs: Vec<String> = digest.iter().map(|byte| format!("{byte:02X}")).collect();
    pairs.join(":")
}

/// Every certificate in a PEM file, in order; none is an error.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let sections = read_sections(path)?;
    let certificates: Vec<CertificateDer<'static>> = sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if certificates.is_empty() {
        let hint = if sections.iter().any(|(kind, _)| is_key(*kind)) {
            "; it holds a private key: are the certificate and key files swapped?"
        } else {
            ""
        };
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
            hint: hint.to_owned(),
        });
    }
    Ok(certificates)
}

/// The first private key in a PEM file.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let sections = read_sections(path)?;
    let has_certificate = sections.iter().any(|(kind, _)| *kind == SectionKind::Certificate);
    sections
        .into_iter()
        .find_map(|(kind, der)| {
            use rustls_pki_types::pem::PemObject;
            PrivateKeyDer::from_pem(kind, der)
        })
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_owned(),
            hint: if has_certificate {
                "; it holds a certificate: are the certificate and key files swapped?".to_owned()
            } else {
                String::new()
            },
        })
}

fn is_key(kind: SectionKind) -> bool {
    matches!(kind, SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey)
}

/// All PEM blocks of a file. The file is read whole first so that "cannot
/// read" and "not PEM" stay apart; text outside blocks is ignored, as
/// openssl does.
fn read_sections(path: &Path) -> Result<Vec<(SectionKind, Vec<u8>)>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = bytes.as_slice();
    let mut sections = Vec::new();
    loop {
        match pem::from_buf(&mut reader) {
            Ok(Some(section)) => sections.push(section),
            Ok(None) => return Ok(sections),
            Err(e) => {
                return Err(TlsError::BadPem {
                    path: path.to_owned(),
                    detail: e.to_string(),
                })
            }
        }
    }
}
