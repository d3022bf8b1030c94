//! `grove ls`: every service, its instances and its name.

use std::process::ExitCode;

use super::client::{print_json, ClientArgs};
use crate::api::types::ServiceView;

/// `grove ls` arguments.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove ls`.
pub fn run(args: &LsArgs) -> anyhow::Result<ExitCode> {
    let services: Vec<ServiceView> = args.client.client()?.get("/v1/services")?;
    if args.client.json() {
        print_json(&services)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<36} {:>9}  {:<28} CLOSEST", "SERVICE", "RUNNING", "STATES");
    for s in &services {
        let mut states: Vec<String> = s.instances.iter().map(|i| i.state.to_string()).collect();
        states.dedup();
        println!("{:<36} {:>9}  {:<28} {}", s.name, format!("{}/{}", s.running(), s.wanted), states.join(","), s.closest);
    }
    if services.is_empty() {
        println!("(nothing deployed: `grove deploy app.json`)");
    }
    Ok(ExitCode::SUCCESS)
}
