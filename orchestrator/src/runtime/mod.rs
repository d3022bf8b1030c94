//! The worker's process runtime: launches each instance as a process in
//! its network namespace (through `ip netns exec`, which also binds the
//! namespace's resolv.conf over /etc/resolv.conf, so the system resolver
//! inside asks grove's DNS), inside a cgroup with its memory and CPU limits
//! ([`cgroup`]), in a process group of its own (stop kills its children
//! too), with stdout and stderr in a capped log ([`logs`]); restarts it
//! with doubling backoff until a budget is spent, and says what happened
//! as [`RuntimeEvent`]s.

pub mod cgroup;
pub mod logs;
mod supervise;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use cgroup::Cgroups;
use logs::Log;

/// What to run.
#[derive(Clone, Debug)]
pub struct LaunchSpec {
    /// Unique and file-name safe: `[a-z0-9._-]`, at most 100 bytes.
    pub id: String,
    /// The network namespace (`/run/netns/<name>`) to run in.
    pub netns: Option<String>,
    /// Absolute path of the executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Added to a clean environment (PATH, HOME).
    pub env: Vec<(String, String)>,
    /// Memory limit, MiB (0: none).
    pub memory_mib: u32,
    /// CPU limit, whole CPUs (0: none).
    pub vcpus: u32,
    /// Exit 0 completes it instead of restarting it.
    pub one_shot: bool,
}

/// When to restart.
#[derive(Clone, Copy, Debug)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`; one more and it is given up.
    pub max_restarts: u32,
    /// The window.
    pub window: Duration,
    /// First delay; doubles per restart.
    pub backoff_initial: Duration,
    /// Longest delay.
    pub backoff_max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// `exit(n)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// What happened to an instance.
#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeEvent {
    /// A process is up.
    Started {
        /// Instance id.
        id: String,
        /// Its pid.
        pid: u32,
        /// Restarts so far.
        restarts: u32,
    },
    /// It ended.
    Exited {
        /// Instance id.
        id: String,
        /// How.
        exit: ExitKind,
        /// The cgroup's OOM killer did it.
        oom_killed: bool,
        /// It comes back after this long (`None`: it does not).
        restarting_in: Option<Duration>,
        /// Restarts so far.
        restarts: u32,
        /// For people: "exited with code 3", "killed by signal 9 (out of memory: limit 64 MiB)".
        reason: String,
    },
    /// A one-shot instance finished.
    Completed {
        /// Instance id.
        id: String,
    },
    /// Restart budget spent.
    GaveUp {
        /// Instance id.
        id: String,
        /// Why, for people.
        reason: String,
    },
    /// Stopped on request.
    Stopped {
        /// Instance id.
        id: String,
    },
}

/// Why the runtime refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The id is not file-name safe.
    #[error("instance id {0:?}: only a-z, 0-9, '.', '_' and '-', at most 100 bytes")]
    BadId(String),
    /// The program cannot be run.
    #[error("{}: {why} (the SLA's `code` must be an executable on every worker)", path.display())]
    NotExecutable {
        /// The program.
        path: PathBuf,
        /// Missing, not a file, not executable.
        why: &'static str,
    },
    /// Already running.
    #[error("instance {0} is already running")]
    AlreadyRunning(String),
    /// Not known.
    #[error("no instance {0} on this worker")]
    NotFound(String),
    /// A cgroup file could not be made or written.
    #[error("cgroup {}: {source}", path.display())]
    Cgroup {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Logs or spawning.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

struct Entry {
    stop: watch::Sender<bool>,
    log: Arc<Log>,
    done: Option<tokio::task::JoinHandle<()>>,
}

pub(crate) struct Inner {
    entries: Mutex<HashMap<String, Entry>>,
    logs: Mutex<HashMap<String, Arc<Log>>>,
    events: mpsc::UnboundedSender<RuntimeEvent>,
    log_dir: PathBuf,
    log_cap: u64,
    cgroups: Cgroups,
    policy: RestartPolicy,
}

/// Runs and watches instances; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// A supervisor whose groups live under `cgroup_parent` (one per worker
    /// on a machine) and whose logs go to `<state_dir>/logs`.
    pub fn new(state_dir: PathBuf, cgroup_parent: &str, policy: RestartPolicy) -> Result<(Supervisor, mpsc::UnboundedReceiver<RuntimeEvent>), RuntimeError> {
        Self::with_log_cap(state_dir, cgroup_parent, policy, logs::LOG_CAP)
    }

    /// As [`Supervisor::new`], with another log rotation threshold.
    pub fn with_log_cap(
        state_dir: PathBuf,
        cgroup_parent: &str,
        policy: RestartPolicy,
        log_cap: u64,
    ) -> Result<(Supervisor, mpsc::UnboundedReceiver<RuntimeEvent>), RuntimeError> {
        let log_dir = state_dir.join("logs");
        std::fs::create_dir_all(&log_dir).map_err(|source| RuntimeError::Io { what: format!("creating {}", log_dir.display()), source })?;
        let cgroups = Cgroups::detect(cgroup_parent);
        cgroups.clean();
        match &cgroups {
            Cgroups::None(_) => tracing::warn!("instance limits are not enforced: {}", cgroups.describe()),
            _ => tracing::info!("instance limits through {}", cgroups.describe()),
        }
        let (events, rx) = mpsc::unbounded_channel();
        let inner = Inner {
            entries: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            events,
            log_dir,
            log_cap,
            cgroups,
            policy,
        };
        Ok((Supervisor { inner: Arc::new(inner) }, rx))
    }

    /// The hierarchy in use.
    pub fn cgroups(&self) -> &Cgroups {
        &self.inner.cgroups
    }

    /// Starts an instance; returns once its first process is spawned.
    pub async fn start(&self, spec: LaunchSpec) -> Result<u32, RuntimeError> {
        check_id(&spec.id)?;
        check_executable(&spec.program)?;
        let log = Log::open(&self.inner.log_dir, &spec.id, self.inner.log_cap)
            .map_err(|source| RuntimeError::Io { what: format!("opening the log of {}", spec.id), source })?;
        let (stop, stopped) = watch::channel(false);
        let (first, pid) = tokio::sync::oneshot::channel();
        {
            let mut entries = self.inner.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.contains_key(&spec.id) {
                return Err(RuntimeError::AlreadyRunning(spec.id));
            }
            let task = tokio::spawn(supervise::supervise(self.inner.clone(), spec.clone(), log.clone(), stopped, first));
            entries.insert(spec.id.clone(), Entry { stop, log: log.clone(), done: Some(task) });
        }
        self.inner.logs.lock().unwrap_or_else(|p| p.into_inner()).insert(spec.id.clone(), log);
        match pid.await {
            Ok(Ok(pid)) => Ok(pid),
            Ok(Err(e)) => {
                self.inner.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(&spec.id);
                Err(e)
            }
            Err(_) => Err(RuntimeError::NotFound(spec.id)),
        }
    }

    /// Stops an instance and its children: SIGTERM, SIGKILL after 2 s.
    pub async fn stop(&self, id: &str) -> Result<(), RuntimeError> {
        let entry = self.inner.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        let Some(mut entry) = entry else { return Err(RuntimeError::NotFound(id.to_owned())) };
        let _ = entry.stop.send(true);
        if let Some(task) = entry.done.take() {
            let _ = task.await;
        }
        entry.log.note("stopped");
        Ok(())
    }

    /// Stops everything.
    pub async fn stop_all(&self) {
        for id in self.running() {
            let _ = self.stop(&id).await;
        }
    }

    /// The tail of an instance's log and the bytes written in total.
    pub fn logs(&self, id: &str, tail_bytes: u64) -> Result<(String, u64), RuntimeError> {
        let log = self.inner.logs.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        let log = log.ok_or_else(|| RuntimeError::NotFound(id.to_owned()))?;
        log.tail(tail_bytes).map_err(|source| RuntimeError::Io { what: format!("reading the log of {id}"), source })
    }

    /// Ids of supervised instances.
    pub fn running(&self) -> Vec<String> {
        self.inner.entries.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }
}

impl Inner {
    /// The entry is gone once the supervising task ends on its own.
    pub(crate) fn finished(&self, id: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

fn check_id(id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok && id != "." && id != ".." {
        Ok(())
    } else {
        Err(RuntimeError::BadId(id.to_owned()))
    }
}

fn check_executable(path: &std::path::Path) -> Result<(), RuntimeError> {
    use std::os::unix::fs::PermissionsExt;
    let not = |why| Err(RuntimeError::NotExecutable { path: path.to_path_buf(), why });
    if !path.is_absolute() {
        return not("not an absolute path");
    }
    match std::fs::metadata(path) {
        Err(_) => not("not found"),
        Ok(m) if !m.is_file() => not("not a file"),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => not("not executable"),
        Ok(_) => Ok(()),
    }
}
