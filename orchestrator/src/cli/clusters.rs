//! `grove clusters`: the clusters registered with the root.

use std::process::ExitCode;

use super::client::{capacity, print_json, ClientArgs};
use crate::api::types::ClusterView;

/// `grove clusters` arguments.
#[derive(Debug, clap::Args)]
pub struct ClustersArgs {
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove clusters`.
pub fn run(args: &ClustersArgs) -> anyhow::Result<ExitCode> {
    let clusters: Vec<ClusterView> = args.client.client()?.get("/v1/clusters")?;
    if args.client.json() {
        print_json(&clusters)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<16} {:<6} {:<15} {:>7} {:<20} {:<20} {:>9} {:>11}", "CLUSTER", "STATE", "ADDRESS", "WORKERS", "TOTAL", "FREE", "INSTANCES", "LAST REPORT");
    for c in &clusters {
        println!(
            "{:<16} {:<6} {:<15} {:>7} {:<20} {:<20} {:>9} {:>10.1}s",
            c.name,
            c.state,
            c.address.map(|a| a.to_string()).unwrap_or_default(),
            c.workers,
            capacity(&c.total),
            capacity(&c.free),
            c.instances,
            c.last_report_ms as f64 / 1000.0
        );
    }
    Ok(ExitCode::SUCCESS)
}
