//! A kept connection to a service found by name: resolved through the
//! system resolver, re-resolved when the answer's TTL lapses (moving to
//! the new address if it changed) and at once when the connection breaks
//! or an answer is late.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::resolve::{resolve, ResolveError, DEFAULT_TTL};
use crate::wire::{read_message, write_message, WireError};

/// Why one exchange failed (the connection is dropped either way).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The name did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// No address answered.
    #[error("connect to {name} ({addrs}): {source}")]
    Connect {
        /// The name.
        name: String,
        /// The addresses tried.
        addrs: String,
        /// The last error.
        source: std::io::Error,
    },
    /// The exchange failed or timed out.
    #[error("{peer}: {source}")]
    Exchange {
        /// Who it was with.
        peer: SocketAddr,
        /// What went wrong.
        source: WireError,
    },
}

/// One service, by name.
pub struct ServiceLink {
    name: String,
    port: u16,
    timeout: Duration,
    conn: Option<(TcpStream, SocketAddr)>,
    fresh_until: Instant,
    setup: Option<(Duration, Duration)>,
}

impl ServiceLink {
    /// `name:port`; `timeout` bounds connecting and each answer.
    pub fn new(name: &str, port: u16, timeout: Duration) -> ServiceLink {
        ServiceLink { name: name.to_owned(), port, timeout, conn: None, fresh_until: Instant::now(), setup: None }
    }

    /// The name it follows.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one message and waits for the answer, (re)connecting first
    /// when needed. Any failure drops the connection, so the next call
    /// resolves again.
    pub fn exchange<Q: Serialize, A: DeserializeOwned>(&mut self, header: &Q, body: &[u8]) -> Result<(A, Vec<u8>, SocketAddr), LinkError> {
        self.ensure()?;
        let Some((stream, peer)) = self.conn.as_mut() else {
            let source = std::io::Error::other("not connected");
            return Err(LinkError::Connect { name: self.name.clone(), addrs: String::new(), source });
        };
        let peer = *peer;
        let result = write_message(stream, header, body).and_then(|()| read_message(stream));
        match result {
            Ok((answer, body)) => Ok((answer, body, peer)),
            Err(source) => {
                self.conn = None;
                Err(LinkError::Exchange { peer, source })
            }
        }
    }

    /// How long the last lookup and the last connect took (for logs of
    /// slow exchanges); taken by the call.
    pub fn take_setup(&mut self) -> Option<(Duration, Duration)> {
        self.setup.take()
    }

    fn ensure(&mut self) -> Result<(), LinkError> {
        let now = Instant::now();
        if self.conn.is_some() && now < self.fresh_until {
            return Ok(());
        }
        let resolved = match resolve(&self.name, self.port) {
            Ok(resolved) => resolved,
            // A refresh that fails keeps a working connection (a resolver
            // restarting must not stop the stream); asked again soon.
            Err(e) if self.conn.is_some() => {
                tracing::debug!("{}: keeping the connection, lookup failed: {e}", self.name);
                self.fresh_until = now + DEFAULT_TTL;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let resolved_in = now.elapsed();
        self.setup = Some((resolved_in, Duration::ZERO));
        self.fresh_until = now + resolved.ttl;
        if let Some((_, current)) = &self.conn {
            if resolved.addrs.first() == Some(current) {
                return Ok(());
            }
        }
        let mut last = None;
        for addr in &resolved.addrs {
            match TcpStream::connect_timeout(addr, self.timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let _ = stream.set_read_timeout(Some(self.timeout));
                    let _ = stream.set_write_timeout(Some(self.timeout));
                    self.conn = Some((stream, *addr));
                    self.setup = Some((resolved_in, now.elapsed() - resolved_in));
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        self.conn = None;
        let addrs = resolved.addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        Err(LinkError::Connect {
            name: self.name.clone(),
            addrs,
            source: last.unwrap_or_else(|| std::io::Error::other("no address")),
        })
    }
}
