//! The root's user API over HTTP/1.1: bearer token, JSON in and out, a
//! bounded number of connections and a header timeout, so that a stranger
//! on the underlay cannot hold the root's sockets.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::auth::ApiToken;
use super::routes;
use super::RootApi;

/// Connections served at once; more are closed as they arrive.
const MAX_CONNECTIONS: usize = 256;
/// A request's headers must arrive within this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The listening API.
pub struct ApiServer {
    listener: TcpListener,
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) token: ApiToken,
    pub(super) api: Arc<dyn RootApi>,
}

impl ApiServer {
    /// Binds `address`.
    pub async fn bind(address: SocketAddr, token: ApiToken, api: Arc<dyn RootApi>) -> std::io::Result<ApiServer> {
        let listener = TcpListener::bind(address).await?;
        Ok(ApiServer { listener, shared: Arc::new(Shared { token, api }) })
    }

    /// Where it listens (the port, when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("API accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "API connection refused: {MAX_CONNECTIONS} already open");
                continue;
            };
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(routes::handle(&shared, request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, "API connection ended: {e}");
                }
                drop(permit);
            });
        }
    }
}
