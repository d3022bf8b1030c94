//! `grove scale <service> <N>`: sets how many instances a service wants;
//! with `--wait`, follows them as `grove deploy` does.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::client::{finish, write_json, Client, ClientArgs};
use super::deploy::{follow, report};
use super::http::encode_segment;
use crate::api::types::{ScaleRequest, ServiceView};

/// `grove scale` arguments.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "0 stops every instance but keeps the service (scale it up again later).\n\n\
Examples:\n  grove scale web 3\n  grove scale web.shop.prod 5 --wait\n  grove scale web 0")]
pub struct ScaleArgs {
    /// The service: `service[.app[.namespace]]`, e.g. `web`
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// Instances wanted, e.g. `3`
    #[arg(value_name = "N")]
    pub instances: u32,
    /// Follow the instances until the wanted ones are RUNNING, for up to SECONDS (60 if not given)
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "60")]
    pub wait: Option<u64>,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove scale`.
pub fn run(args: &ScaleArgs) -> anyhow::Result<ExitCode> {
    finish(
        args.client
            .client()
            .and_then(|client| scale(&client, args, &mut std::io::stdout().lock())),
    )
}

/// `POST /v1/services/<ref>/scale`, then maybe follows.
pub fn scale(client: &Client, args: &ScaleArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let path = format!("/v1/services/{}/scale", encode_segment(&args.service));
    let view: ServiceView = client.post(&path, &ScaleRequest { instances: args.instances })?;
    let json = args.client.json();
    let wait = args.wait.filter(|&w| w > 0);
    if !json {
        writeln!(
            out,
            "{}: {} instance{} wanted ({} running now)",
            view.name,
            view.wanted,
            if view.wanted == 1 { "" } else { "s" },
            view.running()
        )?;
    }
    let Some(wait) = wait else {
        if json {
            write_json(out, &view)?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let (done, last) = follow(client, vec![view], Duration::from_secs(wait), Duration::from_millis(100), json, out)?;
    report(done, &last, started.elapsed(), "scaled", json, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::{Call, TestServer, TOKEN};
    use crate::cli::client::OutputFormat;

    #[test]
    fn scale_against_the_fake_root() {
        let server = TestServer::start(false);
        let client = Client::new(&server.url(), Some(TOKEN.into())).expect("client");
        let args = ScaleArgs {
            service: "ms2.cam.default".into(),
            instances: 3,
            wait: None,
            client: ClientArgs {
                root: None,
                token: None,
                token_file: None,
                ca: None,
                output: OutputFormat::Text,
            },
        };
        let mut out = Vec::new();
        assert_eq!(scale(&client, &args, &mut out).expect("scale"), ExitCode::SUCCESS);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ms2.cam.default: 3 instances wanted (2 running now)\n"
        );
        assert_eq!(
            server.fake.calls(),
            [Call::Scale {
                reference: "ms2.cam.default".into(),
                instances: 3
            }]
        );
    }

    #[test]
    fn wait_takes_an_optional_value() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            scale: ScaleArgs,
        }
        let wait = |args: &[&str]| Cli::try_parse_from(args).expect("parse").scale.wait;
        assert_eq!(wait(&["grove", "web", "3"]), None);
        assert_eq!(wait(&["grove", "web", "3", "--wait"]), Some(60));
        assert_eq!(wait(&["grove", "web", "3", "--wait", "5"]), Some(5));
    }
}
