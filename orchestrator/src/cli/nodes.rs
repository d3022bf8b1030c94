//! `grove nodes`: every worker of every cluster.

use std::process::ExitCode;

use super::client::{capacity, print_json, ClientArgs};
use crate::api::types::NodeView;

/// `grove nodes` arguments.
#[derive(Debug, clap::Args)]
pub struct NodesArgs {
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove nodes`.
pub fn run(args: &NodesArgs) -> anyhow::Result<ExitCode> {
    let nodes: Vec<NodeView> = args.client.client()?.get("/v1/nodes")?;
    if args.client.json() {
        print_json(&nodes)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<16} {:<16} {:<8} {:<20} {:<20} {:>5} {:>9}  STATE", "NODE", "CLUSTER", "ARCH", "CAPACITY", "FREE", "LOAD", "INSTANCES");
    for n in &nodes {
        let free = n.capacity.saturating_sub(n.reserved);
        println!(
            "{:<16} {:<16} {:<8} {:<20} {:<20} {:>5.2} {:>9}  {}",
            n.name,
            n.cluster,
            n.arch,
            capacity(&n.capacity),
            capacity(&free),
            n.load,
            n.instances,
            n.state
        );
    }
    Ok(ExitCode::SUCCESS)
}
