//! `grove ls`: every application and its services, one line per service.

use std::io::Write;
use std::process::ExitCode;

use super::client::{finish, states, write_json, Client, ClientArgs, Table};
use crate::api::types::AppView;

/// `grove ls` arguments.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "Examples:\n  grove ls\n  grove ls -o json | jq '.[].services[].closest'")]
pub struct LsArgs {
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove ls`.
pub fn run(args: &LsArgs) -> anyhow::Result<ExitCode> {
    finish(
        args.client
            .client()
            .and_then(|client| ls(&client, args.client.json(), &mut std::io::stdout().lock())),
    )
}

/// `GET /v1/apps`, as a table or as JSON.
pub fn ls(client: &Client, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let apps: Vec<AppView> = client.get("/v1/apps")?;
    if json {
        write_json(out, &apps)?;
    } else {
        out.write_all(render(&apps).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// SERVICE, INSTANCES (running/wanted), STATES, CLOSEST; an application
/// without services gets a line of its own.
pub fn render(apps: &[AppView]) -> String {
    if apps.is_empty() {
        return "no applications deployed; deploy one with `grove deploy <sla.json>`\n".to_owned();
    }
    let mut table = Table::new(&["SERVICE", "INSTANCES", "STATES", "CLOSEST"]);
    for app in apps {
        if app.services.is_empty() {
            table.row(vec![
                format!("{}.{}", app.name, app.namespace),
                "0/0".into(),
                "(no services)".into(),
                "-".into(),
            ]);
        }
        for service in &app.services {
            table.row(vec![
                service.name.clone(),
                format!("{}/{}", service.running(), service.wanted),
                states(&service.instances),
                service.closest.clone(),
            ]);
        }
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::{TestServer, TOKEN};

    #[test]
    fn ls_against_the_fake_root() {
        let server = TestServer::start(false);
        let client = Client::new(&server.url(), Some(TOKEN.into())).expect("client");
        let mut out = Vec::new();
        assert_eq!(ls(&client, false, &mut out).expect("ls"), ExitCode::SUCCESS);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "SERVICE          INSTANCES  STATES       CLOSEST\n\
             ms2.cam.default  2/2        2 RUNNING    closest.ms2.cam.default.grove\n\
             ms2.cam.edge     0/1        1 REQUESTED  closest.ms2.cam.edge.grove\n"
        );
        let mut out = Vec::new();
        ls(&client, true, &mut out).expect("json");
        let apps: Vec<AppView> = serde_json::from_slice(&out).expect("the API's JSON");
        assert_eq!(apps.len(), 2);
        assert_eq!(render(&[]), "no applications deployed; deploy one with `grove deploy <sla.json>`\n");
    }

    #[test]
    fn a_wrong_token_exits_2_and_says_how_to_pass_one() {
        let server = TestServer::start(false);
        let client = Client::new(&server.url(), Some("not-it".into())).expect("client");
        let e = ls(&client, false, &mut Vec::new()).expect_err("401");
        assert_eq!(crate::cli::client::exit_status(&e), 2);
        assert!(
            e.to_string()
                .starts_with("wrong API token\n  pass the root's token file with --token-file"),
            "{e}"
        );
    }
}
