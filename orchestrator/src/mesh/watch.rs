//! Following netmanager's membership events: one `GET /v1/events` stream,
//! reopened with backoff whenever it ends (netmanager restarted) or the
//! events stop following on from each other; every (re)connect starts
//! with a snapshot, so nothing that happened meanwhile is lost.

use std::path::PathBuf;
use std::time::Duration;

use netmanager::api::client::{self, EventStream};

use super::events::{MeshEvent, Tracker};
use super::MeshView;

/// First wait before reconnecting, and the longest.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The membership as netmanager's event stream tells it.
pub struct MemberWatch {
    socket: PathBuf,
    stream: Option<EventStream>,
    tracker: Tracker,
    backoff: Duration,
    /// Whether the stream was lost and that was logged (log once per outage).
    away: bool,
}

impl MemberWatch {
    /// Follows the netmanager whose API listens on `socket`.
    pub fn new(socket: PathBuf) -> MemberWatch {
        MemberWatch { socket, stream: None, tracker: Tracker::default(), backoff: BACKOFF_MIN, away: false }
    }

    /// The membership now (none before the first snapshot).
    pub fn view(&self) -> Option<&MeshView> {
        self.tracker.view()
    }

    /// The next change; a [`MeshEvent::Snapshot`] after every (re)connect.
    /// Waits (reconnecting) for as long as netmanager is away.
    pub async fn next(&mut self) -> MeshEvent {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                self.connect().await;
                continue;
            };
            let read = match stream.next().await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    self.lost("netmanager closed the event stream");
                    continue;
                }
                Err(e) => {
                    self.lost(&format!("reading the event stream: {e}"));
                    continue;
                }
            };
            match self.tracker.take(read) {
                Ok(Some(event)) => return event,
                Ok(None) => {}
                Err(gap) => self.lost(&format!("event {} came where {} was due", gap.got, gap.expected)),
            }
        }
    }

    fn lost(&mut self, why: &str) {
        tracing::warn!("mesh events: {why}; reconnecting for a fresh snapshot");
        self.stream = None;
        self.away = true;
    }

    async fn connect(&mut self) {
        loop {
            match client::watch(&self.socket).await {
                Ok(stream) => {
                    if self.away {
                        tracing::info!("mesh events: following netmanager again");
                    }
                    self.stream = Some(stream);
                    self.tracker.reconnected();
                    self.backoff = BACKOFF_MIN;
                    self.away = false;
                    return;
                }
                Err(e) => {
                    if !self.away {
                        tracing::warn!("mesh events: cannot open netmanager's event stream: {e}; retrying");
                        self.away = true;
                    } else {
                        tracing::debug!("mesh events: {e}; retrying in {} ms", self.backoff.as_millis());
                    }
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
