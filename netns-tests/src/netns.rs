//! A named network namespace that is deleted when dropped.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::child::ChildGuard;
use crate::cmd;
use crate::{require_root, unique_name, Error, Result};

/// A network namespace made with `ip netns add`.
///
/// Dropping it kills every process still inside (so nothing keeps the
/// namespace alive) and deletes it, which also destroys its interfaces —
/// veth pairs vanish with either end.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with a fresh [`unique_name`] from `tag`, with `lo` up.
    pub fn new(tag: &str) -> Result<Self> {
        Self::with_name(unique_name(tag))
    }

    /// Creates a namespace with exactly this name, with `lo` up and IPv6
    /// duplicate address detection off (addresses are usable at once; a
    /// testbed assigns no duplicates).
    pub fn with_name(name: impl Into<String>) -> Result<Self> {
        require_root()?;
        let name = name.into();
        cmd::ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.exec_ok(
            "sysctl",
            &["-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"],
        )?;
        Ok(ns)
    }

    /// The namespace's name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` that runs `program args…` inside the namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]).args(args);
        command
    }

    /// Runs `program args…` inside the namespace to completion and returns
    /// its output, whatever its exit status.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.command(program, args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                program: program.to_string(),
                source,
            })
    }

    /// Like [`Netns::exec`] but fails unless the program exits with 0.
    pub fn exec_ok(&self, program: &str, args: &[&str]) -> Result<Output> {
        let output = self.exec(program, args)?;
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        cmd::check("ip", &full, output)
    }

    /// Runs `ip -n <ns> args…`, failing on a non-zero exit.
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        cmd::ip(&full)
    }

    /// Sets a sysctl inside the namespace, e.g. `("net.ipv4.ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec_ok("sysctl", &["-qw", &format!("{key}={value}")])?;
        Ok(())
    }

    /// Starts `program args…` inside the namespace with stdout and stderr
    /// appended to `log`; the process lives as long as the returned guard.
    pub fn spawn_logged(&self, program: &str, args: &[&str], log: &Path) -> Result<ChildGuard> {
        self.spawn_with(program, args, log, &[])
    }

    /// Like [`Netns::spawn_logged`], with extra environment variables.
    pub fn spawn_with(
        &self,
        program: &str,
        args: &[&str],
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<ChildGuard> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("open log {}", log.display()), e))?;
        let file2 = file
            .try_clone()
            .map_err(|e| Error::io(format!("clone log {}", log.display()), e))?;
        let mut command = self.command(program, args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(file2));
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().map_err(|source| Error::Spawn {
            program: program.to_string(),
            source,
        })?;
        Ok(ChildGuard::new(
            format!("{program} in {}", self.name),
            child,
            log.to_path_buf(),
        ))
    }

    /// Starts `program args…` with its output logged to
    /// `$TMPDIR/grove-logs/<ns>-<program>-<n>.log` (deleted when the guard
    /// drops, unless a test is panicking).
    pub fn spawn(&self, program: &str, args: &[&str]) -> Result<ChildGuard> {
        let dir = std::env::temp_dir().join("grove-logs");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let base = Path::new(program)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "proc".into());
        let log = dir.join(format!("{}-{}.log", self.name, unique_name(&base)));
        Ok(self.spawn_logged(program, args, &log)?.with_log_removed_on_drop())
    }

    /// Pids of all processes inside the namespace.
    pub fn pids(&self) -> Result<Vec<u32>> {
        let out = cmd::ip(&["netns", "pids", &self.name])?;
        Ok(cmd::stdout_text(&out)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// True if `ip netns list` shows a namespace with this name.
    pub fn exists(name: &str) -> bool {
        list().map(|names| names.iter().any(|n| n == name)).unwrap_or(false)
    }

    fn kill_all(&self) {
        for _ in 0..3 {
            let pids = self.pids().unwrap_or_default();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                if let Ok(pid) = libc::pid_t::try_from(pid) {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        if let Err(e) = cmd::ip(&["netns", "delete", &self.name]) {
            eprintln!("warning: cannot delete netns {}: {e}", self.name);
        }
    }
}

/// Names of all namespaces in `ip netns list`.
pub fn list() -> Result<Vec<String>> {
    let out = cmd::ip(&["netns", "list"])?;
    Ok(cmd::stdout_text(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

/// Deletes namespaces named `<tag>-…` by [`unique_name`] whose owning
/// process is gone (left behind by a test process that was SIGKILLed).
/// Returns their names.
pub fn sweep_stale(tag: &str) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let prefix = format!("{tag}-");
    for name in list()? {
        if !name.starts_with(&prefix) {
            continue;
        }
        let Some(pid) = crate::names::owner_pid(&name) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let stale = Netns { name: name.clone() };
        drop(stale);
        removed.push(name);
    }
    Ok(removed)
}
