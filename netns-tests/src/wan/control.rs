//! [`WanControl`]: the typed client of wanem's control socket.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::emulator::StatsReport;
use super::protocol::{parse_reply, WanCommand};
use crate::testbed::Node;
use crate::{Error, Result};

/// Counters reported by wanem.
pub type WanStats = StatsReport;

/// Talks to a running wanem. Methods taking [`Node`]s apply to both of the
/// nodes' address families (IPv4 and IPv6).
#[derive(Debug, Clone)]
pub struct WanControl {
    socket: PathBuf,
}

impl WanControl {
    /// A client for the control socket at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        WanControl {
            socket: socket.into(),
        }
    }

    /// The control socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one raw command and returns the reply payload.
    pub fn send(&self, command: &WanCommand) -> Result<String> {
        let mut stream = UnixStream::connect(&self.socket)
            .map_err(|e| Error::io(format!("connect {}", self.socket.display()), e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| Error::io("set control timeout", e))?;
        writeln!(stream, "{command}").map_err(|e| Error::io("write wan command", e))?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(|e| Error::io("read wan reply", e))?;
        parse_reply(&line).map_err(|reason| Error::Wan(format!("`{command}`: {reason}")))
    }

    /// Round-trip time between two nodes: `rtt / 2` each way.
    pub fn set_latency(&self, a: &Node, b: &Node, rtt: Duration) -> Result<()> {
        self.set_one_way(a, b, rtt / 2)?;
        self.set_one_way(b, a, rtt / 2)
    }

    /// One-way delay from `from` to `to` only.
    pub fn set_one_way(&self, from: &Node, to: &Node, delay: Duration) -> Result<()> {
        for (src, dst) in pairs(from, to) {
            self.send(&WanCommand::Delay { src, dst, delay })?;
        }
        Ok(())
    }

    /// Drops `percent` % of packets in both directions between `a` and `b`.
    pub fn set_loss(&self, a: &Node, b: &Node, percent: f64) -> Result<()> {
        self.set_loss_one_way(a, b, percent)?;
        self.set_loss_one_way(b, a, percent)
    }

    /// Drops `percent` % of packets from `from` to `to` only.
    pub fn set_loss_one_way(&self, from: &Node, to: &Node, percent: f64) -> Result<()> {
        for (src, dst) in pairs(from, to) {
            self.send(&WanCommand::Loss { src, dst, percent })?;
        }
        Ok(())
    }

    /// Drops everything between `a` and `b`.
    pub fn cut(&self, a: &Node, b: &Node) -> Result<()> {
        for (a, b) in pairs(a, b) {
            self.send(&WanCommand::Cut { a, b })?;
        }
        Ok(())
    }

    /// Undoes [`WanControl::cut`].
    pub fn heal(&self, a: &Node, b: &Node) -> Result<()> {
        for (a, b) in pairs(a, b) {
            self.send(&WanCommand::Heal { a, b })?;
        }
        Ok(())
    }

    /// Delay for pairs without their own.
    pub fn set_default_delay(&self, delay: Duration) -> Result<()> {
        self.send(&WanCommand::Default { delay }).map(drop)
    }

    /// Current counters.
    pub fn stats(&self) -> Result<WanStats> {
        let payload = self.send(&WanCommand::Stats)?;
        serde_json::from_str(&payload).map_err(|e| Error::Parse {
            tool: "wanem stats".into(),
            reason: e.to_string(),
        })
    }
}

fn pairs(a: &Node, b: &Node) -> [(IpAddr, IpAddr); 2] {
    [
        (a.ipv4().into(), b.ipv4().into()),
        (a.ipv6().into(), b.ipv6().into()),
    ]
}
