//! `grove rm <app>` or `grove rm --service <service>`.

use std::process::ExitCode;

use super::client::{print_json, ClientArgs};
use crate::api::types::{AppView, ServiceView};

/// `grove rm` arguments.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The application (`app[.namespace]`), or with --service a service.
    pub reference: String,
    /// Remove one service instead of a whole application.
    #[arg(long)]
    pub service: bool,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove rm`.
pub fn run(args: &RmArgs) -> anyhow::Result<ExitCode> {
    let client = args.client.client()?;
    if args.service {
        let view: ServiceView = client.delete(&format!("/v1/services/{}", args.reference))?;
        if args.client.json() {
            print_json(&view)?;
        } else {
            println!("removed {} ({} instance(s) undeployed)", view.name, view.instances.len());
        }
    } else {
        let view: AppView = client.delete(&format!("/v1/apps/{}", args.reference))?;
        if args.client.json() {
            print_json(&view)?;
        } else {
            println!("removed {}.{} and its {} service(s)", view.name, view.namespace, view.services.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
