//! One instance's life: spawn, wait, decide (complete, restart, give up),
//! until stopped.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

use super::cgroup::{join_fds, Group};
use super::logs::Log;
use super::{ExitKind, Inner, LaunchSpec, RuntimeError, RuntimeEvent};

/// Between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

pub(super) async fn supervise(
    inner: Arc<Inner>,
    spec: LaunchSpec,
    log: Arc<Log>,
    mut stopped: watch::Receiver<bool>,
    first: oneshot::Sender<Result<u32, RuntimeError>>,
) {
    let mut first = Some(first);
    let mut restarts = 0u32;
    let mut recent: Vec<Instant> = Vec::new();
    let mut backoff = inner.policy.backoff_initial;
    loop {
        let group = match inner.cgroups.create(&spec.id, spec.memory_mib, spec.vcpus) {
            Ok(group) => group,
            Err(e) => {
                fail_start(&inner, &spec, first.take(), e);
                return;
            }
        };
        let mut child = match spawn(&spec, &group) {
            Ok(child) => child,
            Err(e) => {
                group.remove();
                fail_start(&inner, &spec, first.take(), e);
                return;
            }
        };
        let pid = child.id().unwrap_or(0);
        if let Some(first) = first.take() {
            let _ = first.send(Ok(pid));
        }
        let _ = inner.events.send(RuntimeEvent::Started { id: spec.id.clone(), pid, restarts });
        pump(&mut child, &log);
        let oom_before = group.oom_kills();
        let status = tokio::select! {
            status = child.wait() => status,
            _ = stopped.changed() => {
                terminate(&mut child, pid).await;
                group.remove();
                let _ = inner.events.send(RuntimeEvent::Stopped { id: spec.id.clone() });
                return;
            }
        };
        let oom_killed = group.oom_kills() > oom_before;
        group.remove();
        let exit = match status {
            Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(code), _) => ExitKind::Code(code),
                (None, Some(signal)) => ExitKind::Signal(signal),
                _ => ExitKind::Code(-1),
            },
            Err(_) => ExitKind::Code(-1),
        };
        let reason = describe(exit, oom_killed, spec.memory_mib);
        if spec.one_shot && exit == ExitKind::Code(0) {
            let _ = inner.events.send(RuntimeEvent::Completed { id: spec.id.clone() });
            inner.finished(&spec.id);
            return;
        }
        let now = Instant::now();
        recent.retain(|t| now.duration_since(*t) < inner.policy.window);
        if recent.len() as u32 >= inner.policy.max_restarts {
            let reason = format!("crashed {} times in {} s; last: {reason}", recent.len() + 1, inner.policy.window.as_secs());
            log.note(&format!("given up: {reason}"));
            let _ = inner.events.send(RuntimeEvent::Exited {
                id: spec.id.clone(),
                exit,
                oom_killed,
                restarting_in: None,
                restarts,
                reason: reason.clone(),
            });
            let _ = inner.events.send(RuntimeEvent::GaveUp { id: spec.id.clone(), reason });
            return;
        }
        recent.push(now);
        let _ = inner.events.send(RuntimeEvent::Exited {
            id: spec.id.clone(),
            exit,
            oom_killed,
            restarting_in: Some(backoff),
            restarts,
            reason: reason.clone(),
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped.changed() => {
                let _ = inner.events.send(RuntimeEvent::Stopped { id: spec.id.clone() });
                return;
            }
        }
        restarts += 1;
        backoff = (backoff * 2).min(inner.policy.backoff_max);
        log.note(&format!("restart {restarts} after {reason}"));
    }
}

fn fail_start(inner: &Inner, spec: &LaunchSpec, first: Option<oneshot::Sender<Result<u32, RuntimeError>>>, e: RuntimeError) {
    match first {
        Some(first) => {
            let _ = first.send(Err(e));
        }
        None => {
            let _ = inner.events.send(RuntimeEvent::GaveUp { id: spec.id.clone(), reason: format!("cannot restart: {e}") });
        }
    }
}

fn spawn(spec: &LaunchSpec, group: &Group) -> Result<Child, RuntimeError> {
    let mut command = match &spec.netns {
        Some(netns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", netns]).arg(&spec.program);
            c
        }
        None => Command::new(&spec.program),
    };
    command
        .args(&spec.args)
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/")
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let fds = group.procs_fds();
    // SAFETY: the closure only calls setsid(2) and write(2), both
    // async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            join_fds(&fds)
        });
    }
    command.spawn().map_err(|source| RuntimeError::Io { what: format!("starting {}", spec.program.display()), source })
}

/// Copies the child's stdout and stderr into the log as they arrive.
fn pump(child: &mut Child, log: &Arc<Log>) {
    fn copy(from: impl AsyncRead + Unpin + Send + 'static, log: Arc<Log>) {
        tokio::spawn(async move {
            let mut from = from;
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                log.write(&buf[..n]);
            }
        });
    }
    if let Some(out) = child.stdout.take() {
        copy(out, log.clone());
    }
    if let Some(err) = child.stderr.take() {
        copy(err, log.clone());
    }
}

/// SIGTERM to the process group, SIGKILL after the grace.
async fn terminate(child: &mut Child, pid: u32) {
    let group = -(pid as i32);
    // SAFETY: kill(2) on our child's process group.
    unsafe { libc::kill(group, libc::SIGTERM) };
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = child.wait().await;
    }
    // Children that outlived the leader.
    unsafe { libc::kill(group, libc::SIGKILL) };
}

fn describe(exit: ExitKind, oom: bool, memory_mib: u32) -> String {
    match exit {
        ExitKind::Code(code) => format!("exited with code {code}"),
        ExitKind::Signal(signal) if oom => format!("killed by signal {signal} (out of memory: limit {memory_mib} MiB)"),
        ExitKind::Signal(signal) => format!("killed by signal {signal}"),
    }
}
