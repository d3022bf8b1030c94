//! The data planes under test. Each sets up a tunnel between the two
//! namespaces of a [`VethLink`] and says which address of side b to aim at.

pub mod grove;
pub mod nebula;
pub mod veth;
pub mod wireguard_go;

use std::net::IpAddr;
use std::time::Duration;

use netns_tests::{ping_with, wait_until_named, ChildGuard, Netns, PingOptions};

/// A tunnel up between side a (client) and side b (server).
pub struct Tunnel {
    /// Where the client sends traffic (side b's address on this data plane).
    pub server_ip: IpAddr,
    /// The tunnel daemon on side a, whose memory is reported.
    pub daemon_pid: Option<u32>,
    /// Daemons kept alive for the tunnel's lifetime.
    #[expect(dead_code, reason = "held only so the daemons live as long as the tunnel")]
    pub guards: Vec<ChildGuard>,
}

/// Why a data plane could not be set up.
pub enum SetupError {
    /// Software missing; the package that provides it.
    Missing(String),
    /// Present but failed.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for SetupError {
    fn from(e: anyhow::Error) -> Self {
        SetupError::Failed(e)
    }
}

impl From<netns_tests::Error> for SetupError {
    fn from(e: netns_tests::Error) -> Self {
        SetupError::Failed(e.into())
    }
}

/// `SetupError::Missing(package)` unless `program` is on PATH.
pub fn require_program(program: &str, package: &str) -> Result<(), SetupError> {
    if netns_tests::tools::which(program).is_some() {
        Ok(())
    } else {
        Err(SetupError::Missing(package.to_string()))
    }
}

/// Waits until `ip` answers a ping from `from` (handshakes done).
pub fn wait_for_ping(from: &Netns, ip: IpAddr, timeout: Duration) -> anyhow::Result<()> {
    let once = PingOptions {
        count: 1,
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
    };
    wait_until_named(&format!("ping {ip} from {}", from.name()), timeout, || {
        ping_with(from, ip, &once).map(|s| s.received == 1).unwrap_or(false)
    })?;
    Ok(())
}

/// Waits until interface `name` exists in `ns`.
pub fn wait_for_link(ns: &Netns, name: &str, timeout: Duration) -> anyhow::Result<()> {
    wait_until_named(&format!("link {name} in {}", ns.name()), timeout, || {
        ns.ip(&["link", "show", name]).is_ok()
    })?;
    Ok(())
}

/// Fails with the daemon's log if it has exited.
pub fn ensure_running(guard: &mut ChildGuard) -> anyhow::Result<()> {
    if let Some(status) = guard.try_exit_status()? {
        anyhow::bail!("{} exited ({status}):\n{}", guard.label(), guard.log_tail(30));
    }
    Ok(())
}
