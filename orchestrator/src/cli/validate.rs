//! `grove validate <FILE>...`: checks SLA files and reports, one line per
//! problem. Reading files is the only I/O; the checks are [`crate::sla`]'s.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::interpolate::expand_file;
use crate::sla::spec::SlaSpec;
use crate::sla::validate::{self, Checked};
use crate::OrchestratorError;

/// The `--help` text of `grove validate`.
pub const LONG_ABOUT: &str = "\
Check Oakestra SLA v2.0 files, and whether grove can run them.

Two checks, in order:

1. Oakestra's SLA v2.0: the file must be JSON, an object, with
   sla_version \"v2.0\" (\"v1.0\" is deprecated), and pass Oakestra's own JSON
   schema: customerID and applications required; application and
   microservice names and namespaces of 1-30 ASCII letters or digits;
   microservice_name, microservice_namespace, virtualization and code
   required; the schema's types for every field. Unknown keys are ignored,
   as Oakestra ignores them, and reported on stderr as warnings.

2. grove's runtime (skipped with --schema-only): grove runs each
   microservice as a process in its own network namespace, so
   virtualization must be \"process\" and code the absolute path of the
   executable (cmd, then args, are its arguments). memory (MiB) and vcpus
   must be given and > 0; names must be DNS labels (not \"svc\") and unique;
   port is node-port[:service-port][/tcp|/udp], joined by \";\"; constraints
   may be geo (location \"lat,lon\", threshold km), latency (area or
   location, threshold ms), direct (node \"n1;n2\", cluster) or clusters
   (allowed). What grove cannot honour is refused and named: containers,
   unikernels, GPUs/TPUs, bandwidth, storage, volumes, added files, state,
   privileged, ServiceIPs (addresses), service-to-service constraints.

Output: `ok: FILE: N applications, M microservices`, or one line per
problem, `FILE: PATH: RULE`, e.g.
  sla.json: applications[0].microservices[0].virtualization: \"container\" is not supported by grove; supported: process

Exit status: 0 when every file is valid, 1 when one is not, 2 when a file
cannot be read. `-` reads standard input. The accepted subset is described
in orchestrator/SLA.md.";

/// Arguments of `grove validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// SLA files (JSON); `-` is standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Only check what Oakestra checks (its SLA v2.0 schema), not whether grove can run it.
    #[arg(long)]
    pub schema_only: bool,
}

/// How a run went, worst file first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Every file is valid.
    Valid,
    /// At least one file has problems.
    Invalid,
    /// At least one file could not be read.
    Unreadable,
}

impl Outcome {
    /// 0, 1 or 2.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Valid => 0,
            Outcome::Invalid => 1,
            Outcome::Unreadable => 2,
        })
    }
}

/// Checks every file; the report goes to `out`, warnings and read errors to `err`.
pub fn run(args: &ValidateArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Outcome> {
    let mut outcome = Outcome::Valid;
    for file in &args.files {
        let name = file.display().to_string();
        let bytes = if name == "-" {
            let mut bytes = Vec::new();
            io::stdin().lock().read_to_end(&mut bytes).map(|_| bytes)
        } else {
            std::fs::read(file)
        };
        // `${VAR}`s are expanded as `grove deploy` would before sending.
        let bytes = bytes.and_then(|b| expand_file(&b, &|v| std::env::var(v).ok()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)));
        let file_outcome = match bytes {
            Ok(bytes) => report(&name, &bytes, args.schema_only, out, err)?,
            Err(error) => {
                writeln!(err, "{name}: cannot read: {error}")?;
                Outcome::Unreadable
            }
        };
        outcome = outcome.max(file_outcome);
    }
    Ok(outcome)
}

/// Checks one document and writes its lines.
pub fn report(name: &str, bytes: &[u8], schema_only: bool, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Outcome> {
    let Checked { sla, ignored } = validate::check(bytes);
    for key in &ignored {
        match key.did_you_mean {
            Some(known) => writeln!(err, "{name}: warning: {}: unknown key, ignored (did you mean {known:?}?)", key.path)?,
            None => writeln!(err, "{name}: warning: {}: unknown key, ignored", key.path)?,
        }
    }
    let counts = sla.map_err(OrchestratorError::InvalidSla).and_then(|sla| {
        let apps = sla.applications.len();
        let services = sla.applications.iter().map(|app| app.microservices.len()).sum();
        if schema_only {
            Ok((apps, services))
        } else {
            SlaSpec::try_from(&sla).map(|spec| (spec.apps.len(), spec.service_count()))
        }
    });
    match counts {
        Ok((apps, services)) => {
            writeln!(out, "ok: {name}: {}, {}", plural(apps, "application"), plural(services, "microservice"))?;
            Ok(Outcome::Valid)
        }
        Err(error) => {
            for violation in error.violations() {
                writeln!(out, "{name}: {violation}")?;
            }
            Ok(Outcome::Invalid)
        }
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(path)
    }

    fn run_on(files: &[PathBuf], schema_only: bool) -> (Outcome, String, String) {
        let args = ValidateArgs { files: files.to_vec(), schema_only };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let outcome = run(&args, &mut out, &mut err).expect("writing to memory");
        (outcome, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
    }

    #[test]
    fn a_grove_sla_is_ok() {
        let file = fixture("grove-slas/camera-pipeline.json");
        let (outcome, out, err) = run_on(std::slice::from_ref(&file), false);
        assert_eq!(outcome, Outcome::Valid, "{out}{err}");
        assert_eq!(out, format!("ok: {}: 1 application, 3 microservices\n", file.display()));
        assert_eq!(err, "");
    }

    #[test]
    fn an_oakestra_sla_passes_the_schema_but_not_the_runtime() {
        let file = fixture("oakestra-slas/oakestra/examples/curl.json");
        let (outcome, out, _) = run_on(std::slice::from_ref(&file), true);
        assert_eq!((outcome, out), (Outcome::Valid, format!("ok: {}: 1 application, 2 microservices\n", file.display())));
        let (outcome, out, _) = run_on(std::slice::from_ref(&file), false);
        assert_eq!(outcome, Outcome::Invalid);
        let first = format!(
            "{}: applications[0].microservices[0].virtualization: \"container\" is not supported by grove; supported: process",
            file.display()
        );
        assert_eq!(out.lines().next(), Some(first.as_str()), "{out}");
    }

    #[test]
    fn errors_and_warnings_name_the_file_and_path() {
        let file = fixture("oakestra-slas/docs/execution-runtimes__crosvm-deployment.block2.json");
        let (outcome, out, err) = run_on(std::slice::from_ref(&file), true);
        assert_eq!(outcome, Outcome::Invalid);
        let name = file.display();
        assert!(out.contains(&format!("{name}: applications[0].microservices[0].code: is required\n")), "{out}");
        assert!(err.contains(&format!("{name}: warning: applications[0].microservices[0].image: unknown key, ignored\n")), "{err}");
    }

    #[test]
    fn an_unreadable_file_wins_the_exit_code() {
        let missing = fixture("no-such-file.json");
        let bad = fixture("oakestra-slas/oakestra/tests/service_level_agreements/sla_flawed_3.json");
        let (outcome, out, err) = run_on(&[bad.clone(), missing.clone()], true);
        assert_eq!(outcome, Outcome::Unreadable);
        assert_eq!(out, format!("{}: sla_version: is required\n", bad.display()));
        assert!(err.starts_with(&format!("{}: cannot read: ", missing.display())), "{err}");
        assert_eq!(Outcome::Invalid.max(Outcome::Valid), Outcome::Invalid);
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(0, "application"), "0 applications");
        assert_eq!(plural(1, "microservice"), "1 microservice");
    }
}
