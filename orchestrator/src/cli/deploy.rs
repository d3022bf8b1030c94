//! `grove deploy`: deploys (or updates) the applications of an Oakestra SLA
//! v2.0 file, then follows their instances until every wanted one is
//! RUNNING. [`follow`] (shared with `grove scale --wait`) polls; what it
//! prints is worked out by the pure [`progress`] and [`stuck`].

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::client::{finish, write_json, Client, ClientArgs, UsageError};
use super::interpolate::expand_file;
use crate::api::types::{AppView, InstanceView, ServiceView};
use crate::api::MAX_BODY;
use crate::model::InstanceState;

/// The end of `--help` (the first line is `cli::Command`'s).
const AFTER_LONG_HELP: &str = "\
${NAME} and ${NAME:-default} in the file's strings are replaced by the
environment's values first, as Docker Compose does ($$ for a literal $):
  \"code\": \"${GROVE_BIN:-/usr/local/bin}/anonymise\"
Then the file goes to the root (POST /v1/apps); the root checks it as
`grove validate` does and answers with every problem, e.g.
  invalid SLA: applications[0].microservices[1].memory: must be > 0
An application that exists already is updated to what the file says.

Then the affected services are followed: a line for each instance that
changes state, until every wanted instance is RUNNING (exit 0), or until
--wait seconds pass (exit 1, with the reason each instance is not running,
e.g. \"no worker with 2 GiB free within 50 km of Munich\"). The deployment
stays either way; `grove status <service>` shows where it stands.

Examples:
  grove deploy camera-pipeline.json
  grove deploy app.json --wait 0 --root http://10.0.0.1:10000 --token-file ./api-token
  grove deploy app.json -o json | jq '.[].instances'";

/// `grove deploy` arguments.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_LONG_HELP)]
pub struct DeployArgs {
    /// The SLA file (Oakestra SLA v2.0 JSON), e.g. `app.json`
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Seconds to follow the instances until RUNNING; 0 returns once the root accepted the file
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub wait: u64,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove deploy`.
pub fn run(args: &DeployArgs) -> anyhow::Result<ExitCode> {
    finish(
        args.client
            .client()
            .and_then(|client| deploy(&client, args, &mut std::io::stdout().lock())),
    )
}

/// Reads the file, posts it, follows the services; prints to `out`.
pub fn deploy(client: &Client, args: &DeployArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let name = args.file.display();
    let bytes = std::fs::read(&args.file).map_err(|e| UsageError(format!("cannot read {name}: {e}")))?;
    let bytes = expand_file(&bytes, &|v| std::env::var(v).ok()).map_err(|e| UsageError(format!("{name}: {e}")))?;
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        anyhow::bail!("{name} is not JSON: {e} (`grove validate {name}` checks it offline)");
    }
    if bytes.len() > MAX_BODY {
        anyhow::bail!("{name} is {} bytes; the root accepts SLA files up to {MAX_BODY} bytes", bytes.len());
    }
    let started = Instant::now();
    let apps: Vec<AppView> = client.post_bytes("/v1/apps", &bytes)?;
    let services: Vec<ServiceView> = apps.iter().flat_map(|a| a.services.iter().cloned()).collect();
    let json = args.client.json();
    if !json {
        for app in &apps {
            let names: Vec<&str> = app.services.iter().map(|s| s.name.as_str()).collect();
            writeln!(out, "accepted {}.{}: {}", app.name, app.namespace, names.join(", "))?;
        }
    }
    if args.wait == 0 {
        if json {
            write_json(out, &services)?;
        } else {
            writeln!(out, "not waiting; `grove status <service>` shows where the instances are")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (done, last) = follow(
        client,
        services,
        Duration::from_secs(args.wait),
        Duration::from_millis(100),
        json,
        out,
    )?;
    report(done, &last, started.elapsed(), "deployed", json, out)
}

/// Prints how a followed change ended: the time and the `closest` names,
/// or each instance that is not RUNNING and why. Exit 0 or 1.
pub(crate) fn report(
    done: bool,
    last: &[ServiceView],
    took: Duration,
    verb: &str,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if json {
        write_json(out, &last)?;
        if !done {
            for line in stuck(last) {
                eprintln!("{line}");
            }
        }
    } else if done {
        let closest: Vec<&str> = last.iter().map(|s| s.closest.as_str()).collect();
        let reach = match closest.as_slice() {
            [] => String::new(),
            [one] => format!("; reach it at {one}"),
            many => format!("; reach them at {}", many.join(", ")),
        };
        writeln!(out, "{verb} in {:.2} s{reach}", took.as_secs_f64())?;
    } else {
        writeln!(
            out,
            "not every instance is RUNNING after {:.0} s (the deployment stays; `grove status <service>` follows it):",
            took.as_secs_f64()
        )?;
        for line in stuck(last) {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(if done { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Polls `GET /v1/services` every `poll` until every wanted instance of
/// the services in `start` is RUNNING (true) or `wait` passes (false),
/// writing a [`progress`] line for each change (unless `quiet`). Returns
/// the last views of those services.
pub(crate) fn follow(
    client: &Client,
    start: Vec<ServiceView>,
    wait: Duration,
    poll: Duration,
    quiet: bool,
    out: &mut dyn Write,
) -> anyhow::Result<(bool, Vec<ServiceView>)> {
    let deadline = Instant::now() + wait;
    let names: Vec<String> = start.iter().map(|s| s.name.clone()).collect();
    if !quiet {
        for line in progress(&[], &start) {
            writeln!(out, "{line}")?;
        }
    }
    let mut last = start;
    loop {
        if all_running(&last) {
            return Ok((true, last));
        }
        if Instant::now() >= deadline {
            return Ok((false, last));
        }
        std::thread::sleep(poll.min(deadline.saturating_duration_since(Instant::now())));
        let all: Vec<ServiceView> = client.get("/v1/services")?;
        let now: Vec<ServiceView> = all.into_iter().filter(|s| names.contains(&s.name)).collect();
        if let Some(gone) = names.iter().find(|n| !now.iter().any(|s| &s.name == *n)) {
            anyhow::bail!("{gone} is no longer deployed (removed meanwhile?)");
        }
        if !quiet {
            for line in progress(&last, &now) {
                writeln!(out, "{line}")?;
            }
        }
        last = now;
    }
}

/// True when every service has as many RUNNING instances as it wants.
pub fn all_running(services: &[ServiceView]) -> bool {
    services.iter().all(|s| s.running() >= s.wanted as usize)
}

/// One line per instance that appeared, changed state, moved, got a new
/// reason or went away between `before` and `after`:
/// `ms2.cam.default instance 0: CLUSTER_SCHEDULED → RUNNING on worker munich-1 (10.18.0.70)`.
pub fn progress(before: &[ServiceView], after: &[ServiceView]) -> Vec<String> {
    let old: HashMap<(&str, u32), &InstanceView> = before
        .iter()
        .flat_map(|s| s.instances.iter().map(move |i| ((s.name.as_str(), i.number), i)))
        .collect();
    let mut lines = Vec::new();
    for service in after {
        for now in &service.instances {
            let was = old.get(&(service.name.as_str(), now.number));
            let changed = was.is_none_or(|w| w.state != now.state || w.node != now.node || w.reason != now.reason);
            if !changed {
                continue;
            }
            let from = was
                .filter(|w| w.state != now.state)
                .map(|w| format!("{} → ", w.state))
                .unwrap_or_default();
            lines.push(format!("{} instance {}: {from}{}", service.name, now.number, describe(now)));
        }
        for gone in before.iter().filter(|s| s.name == service.name).flat_map(|s| &s.instances) {
            if !service.instances.iter().any(|i| i.number == gone.number) {
                lines.push(format!("{} instance {}: {} → gone", service.name, gone.number, gone.state));
            }
        }
    }
    lines
}

/// The state, where, and why: `RUNNING on worker munich-1 (10.18.0.70)`,
/// `REQUESTED — cannot be placed (yet): no worker with …`, `FAILED: exit 3`.
fn describe(instance: &InstanceView) -> String {
    let mut text = instance.state.to_string();
    if let Some(node) = &instance.node {
        text.push_str(&format!(" on worker {node}"));
        if let Some(address) = instance.address {
            text.push_str(&format!(" ({address})"));
        }
    }
    match (&instance.reason, instance.state) {
        (Some(reason), InstanceState::Requested) => text.push_str(&format!(" — cannot be placed (yet): {reason}")),
        (Some(reason), _) => text.push_str(&format!(": {reason}")),
        (None, _) => {}
    }
    text
}

/// Each instance that keeps a service short of RUNNING, with its reason
/// as the root gave it.
pub fn stuck(services: &[ServiceView]) -> Vec<String> {
    let mut lines = Vec::new();
    for service in services {
        for instance in service.instances.iter().filter(|i| i.state != InstanceState::Running) {
            let how_long = if instance.reason.is_none() {
                format!(" (for {})", super::client::duration_ms(instance.for_ms))
            } else {
                String::new()
            };
            lines.push(format!(
                "{} instance {}: {}{how_long}",
                service.name,
                instance.number,
                describe(instance)
            ));
        }
        let listed = service.instances.len();
        if listed < service.wanted as usize {
            lines.push(format!(
                "{}: {} instances wanted, {listed} created so far",
                service.name, service.wanted
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::{demo_service, TestServer, TOKEN};
    use crate::cli::client::{exit_status, OutputFormat};

    fn instance(number: u32, state: InstanceState, node: Option<&str>, reason: Option<&str>) -> InstanceView {
        InstanceView {
            number,
            state,
            reason: reason.map(Into::into),
            for_ms: 1500,
            cluster: None,
            node: node.map(Into::into),
            address: node.map(|_| "10.18.0.70".parse().expect("ip")),
            restarts: 0,
        }
    }

    fn service(instances: Vec<InstanceView>, wanted: u32) -> ServiceView {
        ServiceView {
            instances,
            wanted,
            ..demo_service("ms2.cam.default", 0)
        }
    }

    #[test]
    fn progress_names_each_change() {
        let before = [service(
            vec![
                instance(0, InstanceState::ClusterScheduled, None, None),
                instance(1, InstanceState::Running, Some("a"), None),
            ],
            3,
        )];
        let after = [service(
            vec![
                instance(0, InstanceState::Running, Some("munich-1"), None),
                instance(
                    2,
                    InstanceState::Requested,
                    None,
                    Some("no worker with 2 GiB free within 50 km of Munich"),
                ),
            ],
            3,
        )];
        assert_eq!(
            progress(&before, &after),
            [
                "ms2.cam.default instance 0: CLUSTER_SCHEDULED → RUNNING on worker munich-1 (10.18.0.70)",
                "ms2.cam.default instance 2: REQUESTED — cannot be placed (yet): no worker with 2 GiB free within 50 km of Munich",
                "ms2.cam.default instance 1: RUNNING → gone",
            ]
        );
        assert!(progress(&after, &after).is_empty());
        let failed = [service(
            vec![instance(0, InstanceState::Failed, Some("munich-1"), Some("exited with status 3"))],
            3,
        )];
        assert_eq!(
            progress(&after[..], &failed)[0],
            "ms2.cam.default instance 0: RUNNING → FAILED on worker munich-1 (10.18.0.70): exited with status 3"
        );
    }

    #[test]
    fn done_and_stuck() {
        let half = [service(
            vec![
                instance(0, InstanceState::Running, Some("a"), None),
                instance(1, InstanceState::Creating, Some("b"), None),
            ],
            2,
        )];
        assert!(!all_running(&half));
        assert_eq!(
            stuck(&half),
            ["ms2.cam.default instance 1: CREATING on worker b (10.18.0.70) (for 1.5 s)"]
        );
        assert!(all_running(&[service(
            vec![instance(0, InstanceState::Running, Some("a"), None)],
            1
        )]));
        assert!(all_running(&[service(vec![], 0)]));
        assert_eq!(
            stuck(&[service(vec![], 1)]),
            ["ms2.cam.default: 1 instances wanted, 0 created so far"]
        );
    }

    fn deploy_args(file: PathBuf, wait: u64, server: &TestServer) -> (DeployArgs, Client) {
        let client = Client::new(&server.url(), Some(TOKEN.into())).expect("client");
        let args = DeployArgs {
            file,
            wait,
            client: ClientArgs {
                root: None,
                token: None,
                token_file: None,
                ca: None,
                output: OutputFormat::Text,
            },
        };
        (args, client)
    }

    #[test]
    fn deploy_follows_until_running() {
        let server = TestServer::start(true);
        let file = std::env::temp_dir().join(format!("grove-deploy-{}.json", std::process::id()));
        std::fs::write(&file, crate::api::tests::sla_bytes("Cam", "ms7", 64, "process")).expect("write");
        let (args, client) = deploy_args(file.clone(), 10, &server);
        let mut out = Vec::new();
        let code = deploy(&client, &args, &mut out).expect("deploy");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(
            text.starts_with("accepted cam.default: ms7.cam.default\nms7.cam.default instance 0: REQUESTED\n"),
            "{text}"
        );
        assert!(
            text.contains("ms7.cam.default instance 0: CREATING → RUNNING on worker munich-1 (10.18.0.70)\n"),
            "{text}"
        );
        assert!(text.contains("; reach it at closest.ms7.cam.default.grove\n"), "{text}");

        std::fs::write(&file, b"{\"sla_version\": ").expect("write");
        let e = deploy(&client, &args, &mut Vec::new()).expect_err("not json");
        assert!(e.to_string().contains("is not JSON"), "{e}");
        let _ = std::fs::remove_file(&file);
        let e = deploy(&client, &args, &mut Vec::new()).expect_err("missing");
        assert_eq!(exit_status(&e), 2, "{e}");
    }
}
