//! What both services do with connections: accept them, one thread each,
//! up to a cap (more are closed at once, with a warning), with the same
//! socket settings; and the logs every binary sets up.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::wire::{read_message, WireError};

/// A peer silent this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves each connection of `listener` on its own thread with `serve`,
/// at most `max` at once. Runs until the listener fails.
pub fn serve_each<F>(listener: TcpListener, max: usize, serve: F)
where
    F: Fn(TcpStream) -> Result<(), WireError> + Send + Sync + 'static,
{
    let serve = Arc::new(serve);
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if busy.fetch_add(1, Ordering::SeqCst) >= max {
            busy.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("refusing a connection: {max} already open");
            continue;
        }
        let (serve, busy) = (serve.clone(), busy.clone());
        std::thread::spawn(move || {
            let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            let settings = stream.set_nodelay(true).and_then(|()| stream.set_read_timeout(Some(IDLE_TIMEOUT)));
            match settings.map_err(WireError::from).and_then(|()| serve(stream)) {
                Ok(()) => tracing::info!(%peer, "peer left"),
                Err(e) => tracing::info!(%peer, "connection ended: {e}"),
            }
            busy.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// The next message, or `None` when the peer closed between messages.
pub fn next_message<H: DeserializeOwned>(stream: &mut TcpStream) -> Result<Option<(H, Vec<u8>)>, WireError> {
    match read_message(stream) {
        Ok(m) => Ok(Some(m)),
        Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Logs to stderr, `RUST_LOG` or else `default` (e.g. "info").
pub fn init_logs(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)))
        .with_writer(std::io::stderr)
        .init();
}
