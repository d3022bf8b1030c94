//! `grove`: parses arguments and hands them to the library's commands.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use orchestrator::cli::{self, Cli, Command};

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Root(args) => cli::root::run(args),
        Command::Cluster(args) => cli::cluster::run(args),
        Command::Worker(args) => cli::worker::run(args),
        Command::Deploy(args) => cli::deploy::run(&args),
        Command::Ls(args) => cli::ls::run(&args),
        Command::Status(args) => cli::status::run(&args),
        Command::Logs(args) => cli::logs::run(&args),
        Command::Scale(args) => cli::scale::run(&args),
        Command::Rm(args) => cli::rm::run(&args),
        Command::Nodes(args) => cli::nodes::run(&args),
        Command::Clusters(args) => cli::clusters::run(&args),
        Command::Validate(args) => {
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            let outcome = cli::validate::run(&args, &mut out, &mut err).context("writing the report")?;
            Ok(outcome.exit_code())
        }
    }
}
