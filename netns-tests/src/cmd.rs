//! Running short-lived commands and turning failures into [`Error`]s.

use std::process::{Command, Output};

use crate::{Error, Result};

/// Runs `program args…` to completion, failing unless it exits with 0.
pub fn run(program: &str, args: &[&str]) -> Result<Output> {
    let output = output(program, args)?;
    check(program, args, output)
}

/// Runs `program args…` to completion and returns its output whatever the
/// exit status (spawning failures are still errors).
pub fn output(program: &str, args: &[&str]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            program: program.to_string(),
            source,
        })
}

/// Turns a non-zero exit into [`Error::Command`].
pub fn check(program: &str, args: &[&str], output: Output) -> Result<Output> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error::Command {
            command: format!("{program} {}", args.join(" ")),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Runs `ip args…`, failing on a non-zero exit.
pub fn ip(args: &[&str]) -> Result<Output> {
    run("ip", args)
}

/// Stdout of a finished command as trimmed text.
pub fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
