//! `grove rm <app>` or `grove rm --service <service>`: undeploys an
//! application (every service and instance of it) or one service.

use std::io::Write;
use std::process::ExitCode;

use super::client::{finish, write_json, ApiFailure, Client, ClientArgs};
use super::http::encode_segment;
use crate::api::types::{AppView, ServiceView};

/// `grove rm` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Examples:\n  grove rm shop            # the application shop (any namespace, if only one)\n  \
grove rm shop.prod\n  grove rm --service web.shop.prod"
)]
pub struct RmArgs {
    /// The application, `app[.namespace]` (e.g. `shop.prod`); with --service, a service `service[.app[.namespace]]`
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// Remove one service instead of a whole application
    #[arg(long)]
    pub service: bool,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove rm`.
pub fn run(args: &RmArgs) -> anyhow::Result<ExitCode> {
    finish(
        args.client
            .client()
            .and_then(|client| rm(&client, args, &mut std::io::stdout().lock())),
    )
}

/// `DELETE /v1/apps/<ref>` or `/v1/services/<ref>`; prints what went.
pub fn rm(client: &Client, args: &RmArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let reference = encode_segment(&args.reference);
    let json = args.client.json();
    if args.service {
        let view: ServiceView = client.delete(&format!("/v1/services/{reference}"))?;
        if json {
            write_json(out, &view)?;
        } else {
            writeln!(out, "removed service {} ({})", view.name, instances(view.instances.len()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let view: AppView = client
        .delete(&format!("/v1/apps/{reference}"))
        .map_err(|e| hint_service(e, &args.reference))?;
    if json {
        write_json(out, &view)?;
    } else {
        let names: Vec<&str> = view.services.iter().map(|s| s.name.as_str()).collect();
        let count: usize = view.services.iter().map(|s| s.instances.len()).sum();
        let services = match names.len() {
            0 => "no services".to_owned(),
            1 => format!("service {}", names[0]),
            _ => format!("services {}", names.join(", ")),
        };
        writeln!(
            out,
            "removed application {}.{}: {services} ({})",
            view.name,
            view.namespace,
            instances(count)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn instances(n: usize) -> String {
    format!("{n} instance{} undeployed", if n == 1 { "" } else { "s" })
}

/// A reference of three names looks like a service: say how to remove one.
fn hint_service(error: anyhow::Error, reference: &str) -> anyhow::Error {
    match error.downcast::<ApiFailure>() {
        Ok(mut failure) => {
            if failure.status == 404 && reference.split('.').count() == 3 {
                failure
                    .hints
                    .push(format!("{reference} looks like a service: `grove rm --service {reference}`"));
            }
            failure.into()
        }
        Err(error) => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::{Call, TestServer, TOKEN};
    use crate::cli::client::OutputFormat;

    fn args(reference: &str, service: bool) -> RmArgs {
        RmArgs {
            reference: reference.into(),
            service,
            client: ClientArgs {
                root: None,
                token: None,
                token_file: None,
                ca: None,
                output: OutputFormat::Text,
            },
        }
    }

    #[test]
    fn rm_against_the_fake_root() {
        let server = TestServer::start(false);
        let client = Client::new(&server.url(), Some(TOKEN.into())).expect("client");
        let mut out = Vec::new();
        rm(&client, &args("cam.edge", false), &mut out).expect("rm app");
        rm(&client, &args("ms2", true), &mut out).expect("rm service");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "removed application cam.edge: service ms2.cam.edge (1 instance undeployed)\nremoved service ms2.cam.default (2 instances undeployed)\n"
        );
        assert_eq!(
            server.fake.calls(),
            [Call::RemoveApp("cam.edge".into()), Call::RemoveService("ms2".into())]
        );
        let e = rm(&client, &args("web.shop.prod", false), &mut Vec::new()).expect_err("404");
        assert_eq!(
            e.to_string(),
            "no application named \"web.shop.prod\"\n  web.shop.prod looks like a service: `grove rm --service web.shop.prod`"
        );
    }
}
