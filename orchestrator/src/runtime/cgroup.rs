//! Memory and CPU limits through cgroups: v2 where /sys/fs/cgroup is a
//! cgroup2 hierarchy with the memory and cpu controllers, else v1 (separate
//! memory and cpu hierarchies, what this project's CI machine has), else
//! none (limits are then not enforced, and the worker says so once).

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::RuntimeError;

const ROOT: &str = "/sys/fs/cgroup";
/// The CFS period; a quota of `vcpus × PERIOD` gives that many CPUs.
const PERIOD_US: u64 = 100_000;

/// Which cgroup hierarchy the host offers.
#[derive(Clone, Debug)]
pub enum Cgroups {
    /// Unified hierarchy under this directory (the parent of every group).
    V2(PathBuf),
    /// Memory and cpu hierarchies: parents under each.
    V1 {
        /// `/sys/fs/cgroup/memory/<parent>`.
        memory: PathBuf,
        /// `/sys/fs/cgroup/cpu/<parent>` (or `cpu,cpuacct`).
        cpu: PathBuf,
    },
    /// No usable hierarchy, and why.
    None(String),
}

impl Cgroups {
    /// Finds the hierarchy and makes `parent` in it.
    pub fn detect(parent: &str) -> Cgroups {
        let root = Path::new(ROOT);
        let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "memory") && controllers.split_whitespace().any(|c| c == "cpu") {
            let dir = root.join(parent);
            let _ = fs::write(root.join("cgroup.subtree_control"), "+memory +cpu");
            return match fs::create_dir_all(&dir).and_then(|_| fs::write(dir.join("cgroup.subtree_control"), "+memory +cpu")) {
                Ok(()) => Cgroups::V2(dir),
                Err(e) => Cgroups::None(format!("cgroup v2 at {ROOT}, but {} cannot be set up: {e}", dir.display())),
            };
        }
        let memory = root.join("memory");
        let cpu = [root.join("cpu"), root.join("cpu,cpuacct")].into_iter().find(|p| p.join("cpu.cfs_quota_us").exists());
        match cpu {
            Some(cpu) if memory.join("memory.limit_in_bytes").exists() => {
                let (memory, cpu) = (memory.join(parent), cpu.join(parent));
                match fs::create_dir_all(&memory).and_then(|_| fs::create_dir_all(&cpu)) {
                    Ok(()) => Cgroups::V1 { memory, cpu },
                    Err(e) => Cgroups::None(format!("cgroup v1, but the groups cannot be made: {e}")),
                }
            }
            _ => Cgroups::None(format!("neither a cgroup v2 hierarchy with memory and cpu nor v1 memory and cpu controllers under {ROOT}")),
        }
    }

    /// For the log.
    pub fn describe(&self) -> String {
        match self {
            Cgroups::V2(_) => "cgroup v2 (memory.max, cpu.max)".into(),
            Cgroups::V1 { .. } => "cgroup v1 (memory.limit_in_bytes, cpu.cfs_quota_us)".into(),
            Cgroups::None(why) => format!("none: {why}"),
        }
    }

    /// The directories of group `id`.
    fn dirs(&self, id: &str) -> Vec<PathBuf> {
        match self {
            Cgroups::V2(parent) => vec![parent.join(id)],
            Cgroups::V1 { memory, cpu } => vec![memory.join(id), cpu.join(id)],
            Cgroups::None(_) => Vec::new(),
        }
    }

    /// Makes group `id` with its limits (0: none).
    pub fn create(&self, id: &str, memory_mib: u32, vcpus: u32) -> Result<Group, RuntimeError> {
        let err = |path: &Path, e: std::io::Error| RuntimeError::Cgroup { path: path.to_path_buf(), source: e };
        let bytes = u64::from(memory_mib) << 20;
        let quota = u64::from(vcpus) * PERIOD_US;
        let mut procs = Vec::new();
        let dirs = self.dirs(id);
        for dir in &dirs {
            fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
            procs.push(fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs")).map_err(|e| err(dir, e))?.into());
        }
        let write = |file: PathBuf, value: String| fs::write(&file, value).map_err(|e| err(&file, e));
        match self {
            Cgroups::V2(_) => {
                if memory_mib > 0 {
                    write(dirs[0].join("memory.max"), bytes.to_string())?;
                    let _ = fs::write(dirs[0].join("memory.swap.max"), "0");
                }
                if vcpus > 0 {
                    write(dirs[0].join("cpu.max"), format!("{quota} {PERIOD_US}"))?;
                }
            }
            Cgroups::V1 { .. } => {
                if memory_mib > 0 {
                    write(dirs[0].join("memory.limit_in_bytes"), bytes.to_string())?;
                    // Without swap accounting this file is absent; the limit still holds.
                    let _ = fs::write(dirs[0].join("memory.memsw.limit_in_bytes"), bytes.to_string());
                }
                if vcpus > 0 {
                    write(dirs[1].join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
                    write(dirs[1].join("cpu.cfs_quota_us"), quota.to_string())?;
                }
            }
            Cgroups::None(_) => {}
        }
        Ok(Group { dirs, procs, kind: self.clone() })
    }

    /// Removes groups an earlier run left under the parent, killing what is in them.
    pub fn clean(&self) {
        let parents: Vec<PathBuf> = match self {
            Cgroups::V2(parent) => vec![parent.clone()],
            Cgroups::V1 { memory, cpu } => vec![memory.clone(), cpu.clone()],
            Cgroups::None(_) => return,
        };
        for parent in parents {
            let Ok(entries) = fs::read_dir(&parent) else { continue };
            for entry in entries.flatten().filter(|e| e.path().is_dir()) {
                kill_all(&entry.path());
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
}

/// One instance's group.
#[derive(Debug)]
pub struct Group {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each directory, open before fork so the child only writes.
    procs: Vec<OwnedFd>,
    kind: Cgroups,
}

impl Group {
    /// The raw fds the child writes "0" into before exec.
    pub fn procs_fds(&self) -> Vec<i32> {
        self.procs.iter().map(|fd| fd.as_raw_fd()).collect()
    }

    /// OOM kills so far.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = match self.kind {
            Cgroups::V2(_) => ("memory.events", "oom_kill"),
            Cgroups::V1 { .. } => ("memory.oom_control", "oom_kill"),
            Cgroups::None(_) => return 0,
        };
        let text = self.dirs.first().and_then(|d| fs::read_to_string(d.join(file)).ok()).unwrap_or_default();
        text.lines().find_map(|l| l.strip_prefix(key)?.trim().parse().ok()).unwrap_or(0)
    }

    /// Kills whatever is left in it, then removes it.
    pub fn remove(&self) {
        for dir in &self.dirs {
            kill_all(dir);
            for _ in 0..50 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// The directories (tests read the limits back).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

fn kill_all(dir: &Path) {
    let text = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill(2) has no memory effects; a stale pid only fails.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Writes "0" (this process) into each fd: async-signal-safe, for pre_exec.
pub fn join_fds(fds: &[i32]) -> std::io::Result<()> {
    for &fd in fds {
        // SAFETY: write(2) on an fd opened by the parent, from a static buffer.
        let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
