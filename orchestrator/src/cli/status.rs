//! `grove status <service>`: one service — what it runs, where its
//! instances are, and why those that are not RUNNING are not.

use std::io::Write;
use std::process::ExitCode;

use super::client::{duration_ms, finish, or_dash, write_json, Client, ClientArgs, Table};
use super::http::encode_segment;
use crate::api::types::ServiceView;

/// `grove status` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "A short reference is enough while it names one service: `web` for web.shop.prod.\n\n\
Examples:\n  grove status web\n  grove status ms2.cam.default -o json"
)]
pub struct StatusArgs {
    /// The service: `service[.app[.namespace]]`, e.g. `web` or `web.shop.prod`
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    finish(
        args.client
            .client()
            .and_then(|client| status(&client, &args.service, args.client.json(), &mut std::io::stdout().lock())),
    )
}

/// `GET /v1/services/<ref>`, as text or JSON.
pub fn status(client: &Client, service: &str, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let view: ServiceView = client.get(&format!("/v1/services/{}", encode_segment(service)))?;
    if json {
        write_json(out, &view)?;
    } else {
        out.write_all(render(&view).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The header lines, then NUMBER STATE FOR NODE CLUSTER ADDRESS RESTARTS REASON.
pub fn render(s: &ServiceView) -> String {
    let mut text = String::new();
    let mut line = |key: &str, value: &str| text.push_str(&format!("{key:<12}{value}\n"));
    line("service", &s.name);
    line("closest", &s.closest);
    line("command", &s.command.join(" "));
    line("resources", &format!("{} vCPU, {} MiB per instance", s.vcpus, s.memory_mib));
    line("instances", &format!("{} of {} wanted RUNNING", s.running(), s.wanted));
    match s.constraints.as_slice() {
        [] => line("constraints", "none"),
        all => {
            for (i, constraint) in all.iter().enumerate() {
                line(if i == 0 { "constraints" } else { "" }, constraint);
            }
        }
    }
    if s.instances.is_empty() {
        text.push_str("\nno instances\n");
        return text;
    }
    let mut table = Table::new(&["NUMBER", "STATE", "FOR", "NODE", "CLUSTER", "ADDRESS", "RESTARTS", "REASON"]);
    for i in &s.instances {
        table.row(vec![
            i.number.to_string(),
            i.state.to_string(),
            duration_ms(i.for_ms),
            or_dash(i.node.as_ref()),
            or_dash(i.cluster.as_ref()),
            or_dash(i.address),
            i.restarts.to_string(),
            i.reason.clone().unwrap_or_default(),
        ]);
    }
    text.push('\n');
    text.push_str(&table.render());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::{TestServer, TOKEN};

    #[test]
    fn status_shows_why_an_instance_waits() {
        let server = TestServer::start(false);
        let client = Client::new(&server.url(), Some(TOKEN.into())).expect("client");
        let mut out = Vec::new();
        status(&client, "ms2.cam.edge", false, &mut out).expect("status");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "service     ms2.cam.edge\n\
             closest     closest.ms2.cam.edge.grove\n\
             command     /usr/bin/cam --fps 2\n\
             resources   1 vCPU, 256 MiB per instance\n\
             instances   0 of 1 wanted RUNNING\n\
             constraints geo: within 50 km of 48.137,11.575\n\
             \n\
             NUMBER  STATE      FOR   NODE  CLUSTER  ADDRESS  RESTARTS  REASON\n\
             0       REQUESTED  61 s  -     -        -        0         \
             no worker with 2 GiB free within 50 km of Munich: closest candidate munich-3 has 1.2 GiB\n"
        );
        let e = status(&client, "ms2", false, &mut Vec::new()).expect_err("ambiguous");
        assert!(e.to_string().contains("ms2.cam.default, ms2.cam.edge"), "{e}");
        assert_eq!(crate::cli::client::exit_status(&e), 1);
    }
}
