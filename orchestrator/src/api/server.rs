//! The root's user API over HTTP/1.1 on a TCP socket: the transport only;
//! what each request means is [`super::routes`].
//!
//! This socket faces the underlay, so a stranger must not be able to hold
//! the root's resources: at most [`DEFAULT_MAX_CONNECTIONS`] connections are
//! served at once (more are closed as they arrive), headers must arrive
//! within [`HEADER_TIMEOUT`], and no connection lives longer than
//! [`CONNECTION_LIFETIME`]. Bodies are read only after the token is checked.
//!
//! With [`ApiServer::with_tls`] each connection is a TLS one: the handshake
//! runs on the connection's own task, under the same connection cap and
//! within [`HANDSHAKE_TIMEOUT`], so a client that fails it, stalls in it or
//! sends garbage loses only its own connection.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::auth::ApiToken;
use super::routes;
use super::tls::ServerTls;
use super::RootApi;

/// Connections served at once unless [`ApiServer::with_max_connections`] says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// A request's headers must arrive within this long.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake must be done within this long (as long as headers get:
/// a slow client's handshake is what its headers would be over plain HTTP).
pub const HANDSHAKE_TIMEOUT: Duration = HEADER_TIMEOUT;
/// Longest a connection may stay open, whatever it does.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// On shutdown, requests in flight get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// At most one warning per this long about connections refused for the cap.
const OVERFLOW_WARNING_EVERY: Duration = Duration::from_secs(10);

/// The listening API. `bind`, then `serve` until shutdown:
///
/// ```ignore
/// let server = ApiServer::bind(address, token, root).await?;
/// tracing::info!(api = %server.local_addr(), "listening");
/// server.serve(shutdown_signal()).await;
/// ```
pub struct ApiServer {
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: usize,
    tls: Option<ServerTls>,
    handshake_timeout: Duration,
}

/// What every connection's handler reaches.
struct Shared {
    token: ApiToken,
    api: Arc<dyn RootApi>,
}

impl ApiServer {
    /// Binds `address` (port 0 picks one: see [`ApiServer::local_addr`]).
    pub async fn bind(address: SocketAddr, token: ApiToken, api: Arc<dyn RootApi>) -> io::Result<ApiServer> {
        let listener = TcpListener::bind(address).await?;
        Ok(ApiServer {
            listener,
            shared: Arc::new(Shared { token, api }),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls: None,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        })
    }

    /// Serves HTTPS with `tls` instead of plain HTTP.
    pub fn with_tls(mut self, tls: ServerTls) -> ApiServer {
        self.tls = Some(tls);
        self
    }

    /// Another handshake deadline than [`HANDSHAKE_TIMEOUT`] (tests).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> ApiServer {
        self.handshake_timeout = timeout;
        self
    }

    /// True when it serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves at most `max` connections at once (at least 1).
    pub fn with_max_connections(mut self, max: usize) -> ApiServer {
        self.max_connections = max.max(1);
        self
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// [`ApiServer::serve`] on a task of its own, for a caller with other
    /// work before it waits: the root should answer (503 or views) while it
    /// still waits for its netmanager, not leave clients in the backlog.
    pub fn spawn(self, shutdown: impl Future<Output = ()> + Send + 'static) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.serve(shutdown))
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the
    /// requests in flight finish (up to 5 s) and returns. Accept errors
    /// (out of file descriptors) back off instead of spinning.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let (stop, stopping) = watch::channel(false);
        let mut backoff = Duration::from_millis(10);
        let mut overflow = Overflow::default();
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(10);
                    accepted
                }
                Err(e) => {
                    tracing::warn!("API accept failed: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                overflow.refused(peer, self.max_connections, Instant::now());
                drop(stream);
                continue;
            };
            let shared = self.shared.clone();
            let stopping = stopping.clone();
            let tls = self.tls.clone();
            let handshake_timeout = self.handshake_timeout;
            // The permit moves into the task and is held through the
            // handshake: a connection still shaking hands counts.
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(shared, stream, peer, stopping).await,
                    Some(tls) => {
                        if let Some(stream) = handshake(&tls, stream, peer, handshake_timeout).await {
                            serve_connection(shared, stream, peer, stopping).await;
                        }
                    }
                }
                drop(permit);
            });
        }
        let _ = stop.send(true);
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("API: connections still open at shutdown were dropped");
        }
    }
}

/// The server side of a TLS handshake, or `None` (logged at debug only:
/// anyone on the underlay can fail a handshake, and must not fill the log).
async fn handshake(
    tls: &ServerTls,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(%peer, "API TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "API TLS handshake not done within {timeout:?}; closed");
            None
        }
    }
}

/// One connection: HTTP/1.1 with keep-alive, ended by its client, the
/// lifetime cap, or shutdown (gracefully: the request in flight finishes).
async fn serve_connection<S>(shared: Arc<Shared>, stream: S, peer: SocketAddr, mut stopping: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move {
            let started = Instant::now();
            let (method, path) = (request.method().clone(), request.uri().path().to_owned());
            let response = routes::handle(shared.api.as_ref(), &shared.token, peer, request).await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            tracing::debug!(%peer, %method, %path, status = response.status().as_u16(), ms, "API request");
            Ok::<_, Infallible>(response)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => {
            if let Err(e) = ended {
                tracing::debug!(%peer, "API connection ended: {e}");
            }
        }
        _ = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
        }
        _ = tokio::time::sleep(CONNECTION_LIFETIME) => {
            tracing::debug!(%peer, "API connection closed: open for {CONNECTION_LIFETIME:?}");
        }
    }
}

/// Counts connections refused for the cap and warns now and then, so a
/// flood does not also flood the log.
#[derive(Default)]
struct Overflow {
    refused: u64,
    warned: Option<Instant>,
}

impl Overflow {
    fn refused(&mut self, peer: SocketAddr, max: usize, now: Instant) {
        self.refused += 1;
        if self.warned.is_none_or(|at| now.duration_since(at) >= OVERFLOW_WARNING_EVERY) {
            tracing::warn!(%peer, refused = self.refused, "API: {max} connections open; closing new ones");
            self.warned = Some(now);
            self.refused = 0;
        }
    }
}
