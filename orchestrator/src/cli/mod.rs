//! The `grove` command line: [`Cli`] and one [`Command`] variant per
//! subcommand, each in its own file. `main.rs` parses and dispatches;
//! nothing else happens there.

use clap::{Parser, Subcommand};

pub mod validate;

/// grove: a lightweight edge-computing platform (encrypted mesh, semantic
/// DNS, hierarchical scheduling). This binary holds the orchestrator tiers
/// and the user commands; today it checks SLA files.
#[derive(Debug, Parser)]
#[command(name = "grove", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands (root, cluster, worker, deploy, ls, ... join here).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check Oakestra SLA v2.0 files, and whether grove can run them.
    #[command(long_about = validate::LONG_ABOUT)]
    Validate(validate::ValidateArgs),
}
