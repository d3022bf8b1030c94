//! `grove deploy`: deploys (or updates) the applications of an Oakestra SLA
//! v2.0 file and follows them until every instance is RUNNING.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::client::{print_json, Client, ClientArgs};
use crate::api::types::{AppView, ServiceView};
use crate::model::InstanceState;

/// `grove deploy` arguments.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The SLA file (JSON), e.g. `app.json`.
    pub file: PathBuf,
    /// Seconds to follow the deployment (0: return once the root accepted it).
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove deploy`.
pub fn run(args: &DeployArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let client = args.client.client()?;
    let started = Instant::now();
    let apps: Vec<AppView> = client.post("/v1/apps", &bytes)?;
    let names: Vec<String> = apps.iter().flat_map(|a| a.services.iter().map(|s| s.name.clone())).collect();
    if !args.client.json() {
        println!("accepted: {} application(s), services {}", apps.len(), names.join(", "));
    }
    if args.wait == 0 {
        return finish(args, &client, &names, true);
    }
    let ok = follow(&client, &names, Duration::from_secs(args.wait), !args.client.json())?;
    if ok && !args.client.json() {
        println!("deployed in {:.2} s", started.elapsed().as_secs_f64());
        for name in &names {
            println!("  reach it at closest.{name}.grove");
        }
    }
    finish(args, &client, &names, ok)
}

fn finish(args: &DeployArgs, client: &Client, names: &[String], ok: bool) -> anyhow::Result<ExitCode> {
    if args.client.json() {
        let views: Vec<ServiceView> = names.iter().map(|n| client.get(&format!("/v1/services/{n}"))).collect::<anyhow::Result<_>>()?;
        print_json(&views)?;
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Polls until every wanted instance of `names` is RUNNING, printing each
/// change; false when `wait` passes first (the reasons are printed).
pub fn follow(client: &Client, names: &[String], wait: Duration, print: bool) -> anyhow::Result<bool> {
    let deadline = Instant::now() + wait;
    let mut seen: HashMap<(String, u32), String> = HashMap::new();
    loop {
        let mut done = true;
        let mut reasons = Vec::new();
        for name in names {
            let view: ServiceView = client.get(&format!("/v1/services/{name}"))?;
            for line in changes(&view, &mut seen) {
                if print {
                    println!("{line}");
                }
            }
            let running = view.running() as u32;
            if running < view.wanted {
                done = false;
            }
            for i in view.instances.iter().filter(|i| i.state != InstanceState::Running) {
                if let Some(reason) = &i.reason {
                    reasons.push(format!("{name} instance {}: {} — {reason}", i.number, i.state));
                }
            }
        }
        if done {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            if print {
                println!("not every instance is RUNNING after {} s:", wait.as_secs());
                for reason in reasons {
                    println!("  {reason}");
                }
            }
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One line per instance whose state (or node) changed since `seen`.
pub fn changes(view: &ServiceView, seen: &mut HashMap<(String, u32), String>) -> Vec<String> {
    let mut lines = Vec::new();
    for i in &view.instances {
        let now = match (&i.node, i.address) {
            (Some(node), Some(address)) => format!("{} on {node} ({address})", i.state),
            (Some(node), None) => format!("{} on {node}", i.state),
            _ => i.state.to_string(),
        };
        let key = (view.name.clone(), i.number);
        let before = seen.insert(key, now.clone());
        if before.as_ref() != Some(&now) {
            let from = before.map(|b| format!("{b} → ")).unwrap_or_default();
            let why = i.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
            lines.push(format!("{} instance {}: {from}{now}{why}", view.name, i.number));
        }
    }
    lines
}
