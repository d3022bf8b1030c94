//! `GET /v1/events`: the membership as a stream of newline-delimited JSON
//! (chunked), for readers that must learn of a death at once without
//! polling `/v1/members`.
//!
//! ```sh
//! curl -N --unix-socket /run/grove/netmanager.sock http://netmanager/v1/events
//! ```
//!
//! The first line is a snapshot of every member, then one line per change
//! (the format is [`crate::control::events`]'s). The lines come from the
//! control plane's feed as it applies each change; nothing here polls.
//! Each stream has its own task between the feed and the socket, with a
//! few lines of buffer: a reader that stops reading holds up only its own
//! task, and once it is more than [`crate::control::feed::BACKLOG`] events
//! behind it gets `{"type":"resync",…}` and a fresh snapshot instead of
//! what it missed. At most [`MAX_STREAMS`] streams are open at once; one
//! more is refused with 503.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::{ApiError, ApiState};
use crate::control::events::{Event, EventKind};
use crate::control::feed::{FeedHub, Subscription};
use crate::control::ControlError;

/// Event streams open at once.
pub const MAX_STREAMS: usize = 16;
/// Lines buffered per stream between its task and the socket.
const LINES: usize = 16;

/// The streams' slots.
#[derive(Clone)]
pub struct StreamSlots(Arc<Semaphore>);

impl StreamSlots {
    pub fn new(streams: usize) -> StreamSlots {
        StreamSlots(Arc::new(Semaphore::new(streams)))
    }
}

impl Default for StreamSlots {
    fn default() -> StreamSlots {
        StreamSlots::new(MAX_STREAMS)
    }
}

/// A response body fed line by line by the stream's task; hyper sends
/// each line as a chunk.
pub struct EventBody {
    lines: mpsc::Receiver<Bytes>,
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.lines.poll_recv(cx).map(|line| line.map(|bytes| Ok(Frame::data(bytes))))
    }
}

pub(super) fn open(state: &ApiState) -> Result<Response<EventBody>, ApiError> {
    let dynamic = state.dynamic("/v1/events: static mode has no membership; peers are in /v1/status")?;
    respond(dynamic.control.feed(), &state.streams)
}

/// Opens a stream on `feed` if a slot is free (503 otherwise, and while
/// the control plane is not running).
pub fn respond(feed: FeedHub, slots: &StreamSlots) -> Result<Response<EventBody>, ApiError> {
    let permit = slots.0.clone().try_acquire_owned().map_err(|_| ApiError::TooManyStreams(MAX_STREAMS))?;
    let subscription = feed.subscribe().ok_or(ApiError::Control(ControlError::Stopped))?;
    let (lines, body) = mpsc::channel(LINES);
    tokio::spawn(forward(feed, subscription, lines, permit));
    let mut response = Response::new(EventBody { lines: body });
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Snapshot, then every event, until the feed stops or the reader goes
/// (its slot is freed then, even if no event comes).
async fn forward(feed: FeedHub, subscription: Subscription, lines: mpsc::Sender<Bytes>, _slot: OwnedSemaphorePermit) {
    let Subscription { snapshot, mut events } = subscription;
    if !send(&lines, &snapshot).await {
        return;
    }
    loop {
        let received = tokio::select! {
            received = events.recv() => received,
            _ = lines.closed() => return,
        };
        let event = match received {
            Ok(event) => event,
            Err(RecvError::Closed) => return,
            Err(RecvError::Lagged(missed)) => {
                let Some(fresh) = feed.subscribe() else { return };
                tracing::info!(missed, "a /v1/events reader fell behind: resync and a fresh snapshot");
                events = fresh.events;
                if !send(&lines, &Event { seq: fresh.snapshot.seq, kind: EventKind::Resync { missed } }).await {
                    return;
                }
                fresh.snapshot
            }
        };
        if !send(&lines, &event).await {
            return;
        }
    }
}

/// One JSON line; false once the reader is gone.
async fn send(lines: &mpsc::Sender<Bytes>, event: &Event) -> bool {
    let mut line = match serde_json::to_vec(event) {
        Ok(line) => line,
        Err(e) => {
            tracing::error!("event not serializable: {e}");
            return true;
        }
    };
    line.push(b'\n');
    lines.send(Bytes::from(line)).await.is_ok()
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
