//! `grove nodes`: every worker of every cluster, as the clusters report them.

use std::io::Write;
use std::process::ExitCode;

use super::client::{capacity, finish, write_json, Client, ClientArgs, Table};
use crate::api::types::NodeView;

/// `grove nodes` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "CAPACITY is what the worker has, FREE what instances placed there leave of it.\n\n\
Examples:\n  grove nodes\n  grove nodes -o json | jq '.[] | select(.state != \"alive\")'"
)]
pub struct NodesArgs {
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove nodes`.
pub fn run(args: &NodesArgs) -> anyhow::Result<ExitCode> {
    finish(
        args.client
            .client()
            .and_then(|client| nodes(&client, args.client.json(), &mut std::io::stdout().lock())),
    )
}

/// `GET /v1/nodes`, as a table or JSON.
pub fn nodes(client: &Client, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let nodes: Vec<NodeView> = client.get("/v1/nodes")?;
    if json {
        write_json(out, &nodes)?;
    } else {
        out.write_all(render(&nodes).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// NODE CLUSTER STATE CAPACITY FREE LOAD INSTANCES ARCH.
pub fn render(nodes: &[NodeView]) -> String {
    if nodes.is_empty() {
        return "no workers have reported yet: start `grove worker --cluster <cluster>` beside a node's netmanager\n".to_owned();
    }
    let mut table = Table::new(&["NODE", "CLUSTER", "STATE", "CAPACITY", "FREE", "LOAD", "INSTANCES", "ARCH"]);
    for n in nodes {
        table.row(vec![
            n.name.clone(),
            n.cluster.clone(),
            n.state.clone(),
            capacity(&n.capacity),
            capacity(&n.capacity.saturating_sub(n.reserved)),
            format!("{:.2}", n.load),
            n.instances.to_string(),
            n.arch.clone(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::{TestServer, TOKEN};

    #[test]
    fn nodes_against_the_fake_root() {
        let server = TestServer::start(false);
        let client = Client::new(&server.url(), Some(TOKEN.into())).expect("client");
        let mut out = Vec::new();
        nodes(&client, false, &mut out).expect("nodes");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "NODE      CLUSTER  STATE  CAPACITY           FREE               LOAD  INSTANCES  ARCH\n\
             munich-1  bavaria  alive  2.0 CPU / 3.8 GiB  1.0 CPU / 3.5 GiB  0.25  1          x86_64\n\
             munich-2  bavaria  alive  2.0 CPU / 3.8 GiB  1.0 CPU / 3.5 GiB  0.25  1          x86_64\n"
        );
        assert!(render(&[]).starts_with("no workers"));
    }
}
