//! One tier link after the hello: frames from a channel go out, frames
//! that come in go to a handler, until either side ends; and the lower
//! tier's loop that dials its upper tier again with backoff. Shared by the
//! root ⇄ cluster and cluster ⇄ worker links so each reads the same.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::{read_frame, write_frame, Message};

/// First wait before dialling again, and the longest.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(3);

/// Writes what `outgoing` yields and hands every incoming frame to
/// `on_message`, until the peer closes, a frame is bad or the channel ends.
pub async fn pump<R, W, F, Fut>(mut reader: R, mut writer: W, mut outgoing: mpsc::Receiver<Message>, mut on_message: F) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: FnMut(Message) -> Fut,
    Fut: Future<Output = ()>,
{
    let write = async move {
        while let Some(message) = outgoing.recv().await {
            write_frame(&mut writer, &message).await?;
        }
        anyhow::Ok(())
    };
    let read = async {
        while let Some(message) = read_frame(&mut reader).await? {
            on_message(message).await;
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = write => r,
        r = read => r,
    }
}

/// Runs `connect` forever: after a link that ended, again at once (after
/// the first backoff); after a failure, with doubling backoff up to 3 s.
/// `down` runs between attempts (the link is gone: drop its sender).
pub async fn redial<C, Fut>(what: &str, mut connect: C, down: impl Fn())
where
    C: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut backoff = BACKOFF_FIRST;
    loop {
        match connect().await {
            Ok(()) => {
                tracing::warn!("{what} link closed; reconnecting");
                backoff = BACKOFF_FIRST;
            }
            Err(e) => {
                tracing::warn!("{what} link: {e:#}; retrying in {} ms", backoff.as_millis());
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        down();
        tokio::time::sleep(backoff).await;
    }
}
