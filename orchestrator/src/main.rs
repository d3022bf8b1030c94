//! `grove`: parses arguments and hands them to the library's commands.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use orchestrator::cli::{validate, Cli, Command};

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => {
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            let outcome = validate::run(&args, &mut out, &mut err).context("writing the report")?;
            Ok(outcome.exit_code())
        }
    }
}
