//! `grove scale <service> <N>`.

use std::process::ExitCode;
use std::time::Duration;

use super::client::{print_json, ClientArgs};
use crate::api::types::{ScaleRequest, ServiceView};

/// `grove scale` arguments.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// The service: `service[.app[.namespace]]`.
    pub service: String,
    /// Instances wanted.
    pub instances: u32,
    /// Seconds to follow until they run (0: don't wait).
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove scale`.
pub fn run(args: &ScaleArgs) -> anyhow::Result<ExitCode> {
    let client = args.client.client()?;
    let body = serde_json::to_vec(&ScaleRequest { instances: args.instances })?;
    let view: ServiceView = client.post(&format!("/v1/services/{}/scale", args.service), &body)?;
    if args.client.json() {
        print_json(&view)?;
    } else {
        println!("{}: {} instance(s) wanted", view.name, view.wanted);
    }
    if args.wait > 0 && !super::deploy::follow(&client, &[view.name], Duration::from_secs(args.wait), !args.client.json())? {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
