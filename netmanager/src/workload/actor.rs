//! [`Workloads`] as an actor: a dedicated OS thread owns them and runs
//! their blocking `ip` calls one command at a time, so the async runtime
//! never waits on a subprocess and never on a lock held across one. The
//! thread is in the node's network namespace (it inherits the spawning
//! thread's), which is also where a `setns` would go.
//!
//! [`WorkloadsHandle::list`] reads a snapshot the thread replaces after
//! every change, so listing never waits for a create that is running.

use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

use super::{Workload, WorkloadError, WorkloadKey, WorkloadNet, Workloads};

/// Commands waiting for the thread; senders wait when it is this far behind.
const QUEUE: usize = 64;

/// What the thread runs: [`Workloads`], or a fake in tests.
trait Engine: Send + 'static {
    fn create(&mut self, key: WorkloadKey) -> Result<Workload, WorkloadError>;
    fn delete(&mut self, key: &WorkloadKey) -> Result<Workload, WorkloadError>;
    fn list(&self) -> Vec<Workload>;
    fn teardown(self);
}

impl Engine for Workloads {
    fn create(&mut self, key: WorkloadKey) -> Result<Workload, WorkloadError> {
        Workloads::create(self, key)
    }

    fn delete(&mut self, key: &WorkloadKey) -> Result<Workload, WorkloadError> {
        Workloads::delete(self, key)
    }

    fn list(&self) -> Vec<Workload> {
        Workloads::list(self)
    }

    fn teardown(self) {
        Workloads::teardown(self);
    }
}

enum Command {
    Create {
        key: WorkloadKey,
        reply: oneshot::Sender<Result<Workload, WorkloadError>>,
    },
    Delete {
        key: WorkloadKey,
        reply: oneshot::Sender<Result<Workload, WorkloadError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The daemon's access to its workloads; cheap to clone. Every method
/// returns [`WorkloadError::Stopped`] once the thread is gone.
#[derive(Clone)]
pub struct WorkloadsHandle {
    commands: mpsc::Sender<Command>,
    /// The workloads by address, as of the last finished command.
    snapshot: Arc<RwLock<Vec<Workload>>>,
    /// Taken by the first [`WorkloadsHandle::shutdown`], which joins it.
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for WorkloadsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadsHandle")
            .field("workloads", &self.snapshot.read().len())
            .field("stopped", &self.commands.is_closed())
            .finish()
    }
}

impl WorkloadsHandle {
    /// Starts the workload thread, which removes what an earlier run left
    /// ([`Workloads::cleanup_stale`]) and sets up ([`Workloads::setup`]);
    /// returns once that is done, with setup's error if it failed.
    ///
    /// Call [`WorkloadsHandle::shutdown`] before exiting: if every handle is
    /// dropped instead, the thread still tears down, but nobody waits for it.
    pub async fn spawn(net: WorkloadNet) -> Result<WorkloadsHandle, WorkloadError> {
        Self::spawn_with(move || {
            Workloads::cleanup_stale(&net.netns_prefix);
            Workloads::setup(net)
        })
        .await
    }

    async fn spawn_with<E: Engine>(
        make: impl FnOnce() -> Result<E, WorkloadError> + Send + 'static,
    ) -> Result<WorkloadsHandle, WorkloadError> {
        let (commands, inbox) = mpsc::channel(QUEUE);
        let snapshot = Arc::new(RwLock::new(Vec::new()));
        let (ready, started) = oneshot::channel();
        let published = snapshot.clone();
        let thread = std::thread::Builder::new()
            .name("workloads".into())
            .spawn(move || match make() {
                Ok(engine) => {
                    let _ = ready.send(Ok(()));
                    serve(engine, inbox, &published);
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            })
            .map_err(WorkloadError::Thread)?;
        // A dropped `ready` means the setup panicked: the thread is gone.
        started.await.map_err(|_| WorkloadError::Stopped)??;
        Ok(WorkloadsHandle {
            commands,
            snapshot,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// A namespace for the instance ([`Workloads::create`]); in
    /// [`WorkloadsHandle::list`] by the time this returns.
    pub async fn create(&self, key: WorkloadKey) -> Result<Workload, WorkloadError> {
        let (reply, answer) = oneshot::channel();
        self.ask(Command::Create { key, reply }, answer).await?
    }

    /// Deletes the instance's namespace ([`Workloads::delete`]).
    pub async fn delete(&self, key: &WorkloadKey) -> Result<Workload, WorkloadError> {
        let (reply, answer) = oneshot::channel();
        let key = *key;
        self.ask(Command::Delete { key, reply }, answer).await?
    }

    /// All workloads, by address, as of the last create or delete that
    /// finished; never waits for one that is running. Empty once stopped.
    pub fn list(&self) -> Vec<Workload> {
        self.snapshot.read().clone()
    }

    /// Tears every workload and the bridge down ([`Workloads::teardown`])
    /// after the commands queued before it, and joins the thread. Commands
    /// after it get [`WorkloadError::Stopped`]; a second call does nothing.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            // An error here means the thread is gone already: nothing to wait for.
            let _ = done.await;
        }
        let thread = self.thread.lock().take();
        let Some(thread) = thread else { return };
        // The thread replied as its last act, so this join is short; it
        // still blocks, so not on the runtime's thread.
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::error!(
                "the workload thread panicked; workload namespaces may remain (`ip netns list`)"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot join the workload thread"),
        }
    }

    async fn ask<T>(
        &self,
        command: Command,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, WorkloadError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| WorkloadError::Stopped)?;
        // Dropped unanswered: the thread stopped (shutdown, or a panic).
        answer.await.map_err(|_| WorkloadError::Stopped)
    }
}

/// The thread's loop: one command at a time until shutdown, or until every
/// handle is gone.
fn serve<E: Engine>(
    mut engine: E,
    mut inbox: mpsc::Receiver<Command>,
    snapshot: &RwLock<Vec<Workload>>,
) {
    while let Some(command) = inbox.blocking_recv() {
        match command {
            Command::Create { key, reply } => {
                let result = engine.create(key);
                publish(&engine, snapshot);
                let _ = reply.send(result);
            }
            Command::Delete { key, reply } => {
                let result = engine.delete(&key);
                publish(&engine, snapshot);
                let _ = reply.send(result);
            }
            Command::Shutdown { reply } => {
                // Refuse what comes later; what is queued is dropped with
                // the inbox, answering `Stopped`.
                inbox.close();
                stop(engine, snapshot);
                let _ = reply.send(());
                return;
            }
        }
    }
    tracing::info!("every workload handle dropped; tearing workload networking down");
    stop(engine, snapshot);
}

/// Replaces the snapshot; the list is built before the lock is taken, so
/// readers wait for a pointer swap at most.
fn publish<E: Engine>(engine: &E, snapshot: &RwLock<Vec<Workload>>) {
    let all = engine.list();
    let old = std::mem::replace(&mut *snapshot.write(), all);
    drop(old);
}

fn stop<E: Engine>(engine: E, snapshot: &RwLock<Vec<Workload>>) {
    engine.teardown();
    snapshot.write().clear();
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod tests;
