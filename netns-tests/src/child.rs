//! A spawned process that is killed and reaped when its guard drops.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How long a process gets to exit after SIGTERM before it is SIGKILLed.
const TERM_GRACE: Duration = Duration::from_secs(1);

/// Signals a test may send to a [`ChildGuard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: ask to shut down.
    Term,
    /// SIGINT: as if Ctrl-C was pressed.
    Int,
    /// SIGHUP: conventionally, reload.
    Hup,
    /// SIGKILL: no questions asked.
    Kill,
    /// SIGSTOP: freeze (simulates a hung node).
    Stop,
    /// SIGCONT: thaw after [`Signal::Stop`].
    Cont,
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Hup => libc::SIGHUP,
            Signal::Kill => libc::SIGKILL,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

/// A running process whose stdout and stderr go to a log file.
///
/// On drop the process gets SIGTERM, then SIGKILL after a short grace period,
/// and is reaped. If the dropping thread is panicking (a failing test), the
/// tail of the log is printed to stderr so the failure explains itself.
#[derive(Debug)]
pub struct ChildGuard {
    label: String,
    child: Child,
    log: PathBuf,
    /// The log was named by us, not the caller: delete it after a clean run.
    remove_log: bool,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Wraps an already spawned child whose output goes to `log`.
    pub fn new(label: impl Into<String>, child: Child, log: PathBuf) -> Self {
        ChildGuard {
            label: label.into(),
            child,
            log,
            remove_log: false,
            status: None,
        }
    }

    /// Deletes the log file on drop unless the thread is panicking (for
    /// logs the caller did not ask for by path).
    pub fn with_log_removed_on_drop(mut self) -> Self {
        self.remove_log = true;
        self
    }

    /// The process id (of the program itself: `ip netns exec` execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What this process is, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The file holding its stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log so far (empty if it cannot be read).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = libc::pid_t::try_from(self.pid())
            .map_err(|_| Error::Config(format!("pid {} out of range", self.pid())))?;
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, signal.raw()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::io(
                format!("kill({pid}, {signal:?})"),
                std::io::Error::last_os_error(),
            ))
        }
    }

    /// Returns the exit status if the process has exited, without blocking.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|e| Error::io(format!("wait for {}", self.label), e))?;
        }
        Ok(self.status)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit_status(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still
    /// running then.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Terminates the process (SIGTERM, then SIGKILL after a grace period)
    /// and reaps it.
    pub fn stop(&mut self) -> Result<Option<ExitStatus>> {
        if self.try_exit_status()?.is_some() {
            return Ok(self.status);
        }
        let _ = self.signal(Signal::Term);
        if let Some(status) = self.wait_for_exit(TERM_GRACE)? {
            return Ok(Some(status));
        }
        let _ = self.child.kill();
        self.status = Some(
            self.child
                .wait()
                .map_err(|e| Error::io(format!("wait for {}", self.label), e))?,
        );
        Ok(self.status)
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- log of {} ({}) ----\n{}\n---- end of log ----",
                self.label,
                self.log.display(),
                self.log_tail(60)
            );
        } else if self.remove_log {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
