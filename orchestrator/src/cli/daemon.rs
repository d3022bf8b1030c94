//! What the three daemons share on the command line: the local netmanager,
//! logging, durations in milliseconds.

use std::path::PathBuf;
use std::time::Duration;

/// Where the local netmanager's API is.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// The local netmanager's API socket (dynamic mode).
    #[arg(long, default_value = "/run/grove/netmanager.sock", env = "GROVE_NETMANAGER_SOCKET")]
    pub netmanager_socket: PathBuf,
}

/// `RUST_LOG`-driven logs on stderr, `info` by default.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// A duration given in milliseconds.
pub fn parse_millis(text: &str) -> Result<Duration, String> {
    text.parse::<u64>().map(Duration::from_millis).map_err(|_| format!("`{text}` is not a number of milliseconds"))
}
