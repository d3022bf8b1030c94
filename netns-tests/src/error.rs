//! The error type of the testbed library.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias for the testbed library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or driving a testbed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Namespaces, veths and TUNs need CAP_NET_ADMIN.
    #[error(
        "netns tests need root (CAP_NET_ADMIN) to create network namespaces, veths and TUNs; \
         run them as root, e.g. `sudo -E cargo test --release -p netns-tests`"
    )]
    NotRoot,

    /// A program could not be started at all.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    /// A command ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    /// A workspace binary has not been built.
    #[error(
        "binary `{name}` not found (looked in {searched:?}); \
         build it with `cargo build --release --workspace` or point GROVE_BIN_DIR at it"
    )]
    BinaryMissing { name: String, searched: Vec<PathBuf> },

    /// A condition did not become true in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },

    /// Output of a tool could not be understood.
    #[error("cannot parse output of {tool}: {reason}")]
    Parse { tool: String, reason: String },

    /// The WAN emulator refused a command or could not be reached.
    #[error("wan emulator: {0}")]
    Wan(String),

    /// A testbed was configured inconsistently.
    #[error("invalid testbed configuration: {0}")]
    Config(String),

    /// Any other I/O failure, with what we were doing.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with a description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
