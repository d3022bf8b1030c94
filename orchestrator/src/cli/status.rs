//! `grove status <service>`: one service's instances, where they run, why not.

use std::process::ExitCode;

use super::client::{print_json, ClientArgs};
use crate::api::types::ServiceView;

/// `grove status` arguments.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The service: `service[.app[.namespace]]`, e.g. `web` or `web.shop.prod`.
    pub service: String,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let s: ServiceView = args.client.client()?.get(&format!("/v1/services/{}", args.service))?;
    if args.client.json() {
        print_json(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("service   {}", s.name);
    println!("closest   {}", s.closest);
    println!("command   {}", s.command.join(" "));
    println!("resources {} vCPU, {} MiB per instance; {} wanted, {} running", s.vcpus, s.memory_mib, s.wanted, s.running());
    for c in &s.constraints {
        println!("constraint {c}");
    }
    println!("{:<4} {:<18} {:>8} {:<16} {:<16} {:<15} {:>8}  REASON", "NUM", "STATE", "FOR", "NODE", "CLUSTER", "ADDRESS", "RESTARTS");
    for i in &s.instances {
        println!(
            "{:<4} {:<18} {:>8} {:<16} {:<16} {:<15} {:>8}  {}",
            i.number,
            i.state.to_string(),
            format!("{:.1}s", i.for_ms as f64 / 1000.0),
            i.node.as_deref().unwrap_or("-"),
            i.cluster.as_deref().unwrap_or("-"),
            i.address.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
            i.restarts,
            i.reason.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
