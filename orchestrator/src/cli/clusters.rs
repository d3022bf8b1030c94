//! `grove clusters`: the cluster orchestrators registered with the root.

use std::io::Write;
use std::process::ExitCode;

use super::client::{capacity, duration_ms, finish, or_dash, write_json, Client, ClientArgs, Table};
use crate::api::types::ClusterView;

/// `grove clusters` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "A cluster that stops reporting is marked lost and its instances are placed elsewhere.\n\n\
Examples:\n  grove clusters\n  grove clusters -o json"
)]
pub struct ClustersArgs {
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove clusters`.
pub fn run(args: &ClustersArgs) -> anyhow::Result<ExitCode> {
    finish(
        args.client
            .client()
            .and_then(|client| clusters(&client, args.client.json(), &mut std::io::stdout().lock())),
    )
}

/// `GET /v1/clusters`, as a table or JSON.
pub fn clusters(client: &Client, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let clusters: Vec<ClusterView> = client.get("/v1/clusters")?;
    if json {
        write_json(out, &clusters)?;
    } else {
        out.write_all(render(&clusters).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// CLUSTER STATE ADDRESS WORKERS CAPACITY FREE INSTANCES LAST REPORT.
pub fn render(clusters: &[ClusterView]) -> String {
    if clusters.is_empty() {
        return "no clusters registered yet: start `grove cluster --root <the root's mesh name>` on a node\n".to_owned();
    }
    let mut table = Table::new(&[
        "CLUSTER",
        "STATE",
        "ADDRESS",
        "WORKERS",
        "CAPACITY",
        "FREE",
        "INSTANCES",
        "LAST REPORT",
    ]);
    for c in clusters {
        table.row(vec![
            c.name.clone(),
            c.state.clone(),
            or_dash(c.address),
            c.workers.to_string(),
            capacity(&c.total),
            capacity(&c.free),
            c.instances.to_string(),
            format!("{} ago", duration_ms(c.last_report_ms)),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::{TestServer, TOKEN};

    #[test]
    fn clusters_against_the_fake_root() {
        let server = TestServer::start(false);
        let client = Client::new(&server.url(), Some(TOKEN.into())).expect("client");
        let mut out = Vec::new();
        clusters(&client, false, &mut out).expect("clusters");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "CLUSTER  STATE  ADDRESS    WORKERS  CAPACITY           FREE               INSTANCES  LAST REPORT\n\
             bavaria  alive  10.18.0.1  2        4.0 CPU / 7.6 GiB  2.0 CPU / 3.8 GiB  2          0.4 s ago\n"
        );
    }
}
