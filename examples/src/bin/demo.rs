//! `demo`: grove's one-command local demo of the whole platform.
//!
//! `cargo run --release -p examples --bin demo [-- --hold]`, as root.
//! Parses arguments, installs the signal handler and calls [`run::run`].

// The binary's root is `src/bin/demo.rs`; its modules live beside it in `demo/`.
#[path = "demo/preflight.rs"]
mod preflight;
#[path = "demo/run.rs"]
mod run;
#[path = "demo/stop.rs"]
mod stop;
#[path = "demo/ui.rs"]
mod ui;
#[path = "demo/view.rs"]
mod view;

use std::process::ExitCode;

use clap::Parser;

/// grove's local demo: cameras find their nearest inference instance.
///
/// What it does, in about a minute, on this machine only:
///   1. installs what is missing (iproute2, procps, opencv-data) with apt-get;
///   2. builds network namespaces for 6 machines at Frankfurt (the cloud),
///      Munich and Milan (edge sites), behind a router whose userspace WAN
///      emulator delays packets by the distance between the sites, and
///      joins them into grove's encrypted mesh by token;
///   3. runs `grove root` in Frankfurt, a `grove cluster` per site and
///      `grove worker`s, and deploys examples/sla/pipeline.json with
///      `grove deploy`: `anonymise` at both edge sites, `detect` in the
///      cloud;
///   4. starts a camera in each edge site, which resolves
///      `closest.anonymise` through the system resolver and streams frames
///      (a real photograph, panned): faces are pixelated at the edge, people
///      counted in the cloud; a live view shows who serves whom;
///   5. SIGKILLs the Munich worker that runs Munich's anonymiser: the view
///      shows the camera failing over to Milan and the orchestrator
///      re-creating the anonymiser on the other Munich worker;
///   6. tears everything down and prints one JSON line:
///      {"demo":"ok","cameras":…,"frames":…,"faces_blurred":…,"failover_s":…}
///
/// Ctrl-C at any point tears down too. Needs root and the workspace built
/// in release mode (`cargo build --release --workspace`): it runs the real
/// netmanager, grove, anonymise, detect and camera binaries next to itself.
/// It sends traffic only inside the namespaces it creates.
#[derive(Debug, Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
pub struct DemoArgs {
    /// Seconds of streaming before the failure.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub duration: f64,

    /// After the tour, keep everything up until Ctrl-C (with commands to
    /// try against it).
    #[arg(long)]
    pub hold: bool,

    /// Frames per second of each camera.
    #[arg(long, default_value_t = 4.0, value_parser = parse_fps)]
    pub fps: f64,

    /// Do not install missing packages; say what is missing instead.
    #[arg(long)]
    pub no_install: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    (1.0..=3600.0).contains(&v).then_some(v).ok_or_else(|| "between 1 and 3600 seconds".into())
}

fn parse_fps(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    (0.5..=30.0).contains(&v).then_some(v).ok_or_else(|| "between 0.5 and 30 frames per second".into())
}

fn main() -> ExitCode {
    let args = DemoArgs::parse();
    examples::server::init_logs("warn");
    if let Err(e) = stop::install() {
        eprintln!("demo: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = run::run(&args);
    let leftovers = leftover_namespaces();
    if !leftovers.is_empty() {
        eprintln!("demo: warning: namespaces left behind: {leftovers:?}; remove them with `ip netns delete NAME`");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<stop::Interrupted>().is_some() => {
            eprintln!("demo: {e}; everything the demo started has been stopped and deleted");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("demo: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Namespaces named after this process that still exist.
fn leftover_namespaces() -> Vec<String> {
    let me = std::process::id();
    netns_tests::netns::list()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| netns_tests::names::owner_pid(n) == Some(me))
        .collect()
}
