//! The actor with an in-memory engine whose creates wait for the test to
//! let them finish, so "a create is running" is a state the test controls.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::*;

/// Long enough for a loaded 2-core machine, short enough to fail fast.
const WAIT: Duration = Duration::from_secs(10);

struct Fake {
    workloads: HashMap<WorkloadKey, Workload>,
    /// Tells the test a create has begun.
    started: UnboundedSender<WorkloadKey>,
    /// One message lets one create finish.
    gate: std_mpsc::Receiver<()>,
    torn_down: Arc<AtomicBool>,
}

/// The test's side of a [`Fake`].
struct Probe {
    started: UnboundedReceiver<WorkloadKey>,
    gate: std_mpsc::Sender<()>,
    torn_down: Arc<AtomicBool>,
}

impl Probe {
    async fn started(&mut self) -> WorkloadKey {
        tokio::time::timeout(WAIT, self.started.recv())
            .await
            .expect("a create starts")
            .expect("the engine is alive")
    }

    fn release(&self, creates: usize) {
        for _ in 0..creates {
            self.gate.send(()).expect("the engine is alive");
        }
    }

    fn torn_down(&self) -> bool {
        self.torn_down.load(Ordering::SeqCst)
    }
}

fn fake() -> (Fake, Probe) {
    let (started_tx, started_rx) = unbounded_channel();
    let (gate_tx, gate_rx) = std_mpsc::channel();
    let torn_down = Arc::new(AtomicBool::new(false));
    let engine = Fake {
        workloads: HashMap::new(),
        started: started_tx,
        gate: gate_rx,
        torn_down: torn_down.clone(),
    };
    let probe = Probe {
        started: started_rx,
        gate: gate_tx,
        torn_down,
    };
    (engine, probe)
}

impl Engine for Fake {
    fn create(&mut self, key: WorkloadKey) -> Result<Workload, WorkloadError> {
        let _ = self.started.send(key);
        // A closed gate (test over) lets the create finish.
        let _ = self.gate.recv_timeout(WAIT);
        if self.workloads.contains_key(&key) {
            return Err(WorkloadError::Exists(Box::new(key)));
        }
        let offset = u8::try_from(self.workloads.len()).expect("few workloads");
        let netns = format!("fake-w{}", key.number);
        let workload = Workload {
            key,
            address: Ipv4Addr::new(10, 18, 0, 66 + offset),
            gateway: Ipv4Addr::new(10, 18, 0, 65),
            host_veth: format!("gv{}", key.number),
            resolv_conf: format!("/etc/netns/{netns}/resolv.conf").into(),
            netns,
        };
        self.workloads.insert(key, workload.clone());
        Ok(workload)
    }

    fn delete(&mut self, key: &WorkloadKey) -> Result<Workload, WorkloadError> {
        self.workloads
            .remove(key)
            .ok_or_else(|| WorkloadError::NotFound(Box::new(*key)))
    }

    fn list(&self) -> Vec<Workload> {
        let mut all: Vec<Workload> = self.workloads.values().cloned().collect();
        all.sort_by_key(|w| w.address);
        all
    }

    fn teardown(self) {
        self.torn_down.store(true, Ordering::SeqCst);
    }
}

fn key(number: u32) -> WorkloadKey {
    WorkloadKey::new("ms2", "cam", "default", number).expect("key")
}

async fn spawned(engine: Fake) -> WorkloadsHandle {
    WorkloadsHandle::spawn_with(move || Ok(engine))
        .await
        .expect("the actor starts")
}

/// `list()` off the runtime thread, so a `list()` that blocked would fail
/// the test instead of hanging it.
async fn list_now(handle: &WorkloadsHandle) -> Vec<WorkloadKey> {
    let handle = handle.clone();
    let listed = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || handle.list()))
        .await
        .expect("list() does not wait for a running create")
        .expect("list task");
    listed.into_iter().map(|w| w.key).collect()
}

fn create_in_background(
    handle: &WorkloadsHandle,
    key: WorkloadKey,
) -> tokio::task::JoinHandle<Result<Workload, WorkloadError>> {
    let handle = handle.clone();
    tokio::spawn(async move { handle.create(key).await })
}

async fn finished<T>(task: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the command finishes")
        .expect("command task")
}

#[tokio::test]
async fn list_answers_while_creates_run() {
    let (engine, mut probe) = fake();
    let handle = spawned(engine).await;
    let first = create_in_background(&handle, key(1));
    assert_eq!(probe.started().await, key(1));
    let second = create_in_background(&handle, key(2));
    assert!(
        list_now(&handle).await.is_empty(),
        "nothing has finished yet"
    );

    probe.release(1);
    let created = finished(first).await.expect("first create");
    assert_eq!(created.address, Ipv4Addr::new(10, 18, 0, 66));
    assert_eq!(probe.started().await, key(2));
    assert_eq!(
        list_now(&handle).await,
        [key(1)],
        "a finished create is listed at once, while the next runs"
    );

    probe.release(1);
    finished(second).await.expect("second create");
    assert_eq!(list_now(&handle).await, [key(1), key(2)]);
    handle.shutdown().await;
}

#[tokio::test]
async fn engine_errors_pass_through_and_deletes_update_the_list() {
    let (engine, probe) = fake();
    probe.release(2);
    let handle = spawned(engine).await;
    handle.create(key(1)).await.expect("created");
    let err = handle.create(key(1)).await.expect_err("a second time");
    assert!(matches!(err, WorkloadError::Exists(_)), "{err}");
    let err = handle.delete(&key(9)).await.expect_err("never created");
    assert!(matches!(err, WorkloadError::NotFound(_)), "{err}");
    let deleted = handle.delete(&key(1)).await.expect("deleted");
    assert_eq!(deleted.key, key(1));
    assert!(handle.list().is_empty());
    handle.shutdown().await;
}

#[tokio::test]
async fn shutdown_tears_down_and_later_calls_are_stopped() {
    let (engine, probe) = fake();
    probe.release(1);
    let handle = spawned(engine).await;
    handle.create(key(1)).await.expect("created");
    assert_eq!(handle.list().len(), 1);

    tokio::time::timeout(WAIT, handle.shutdown())
        .await
        .expect("shutdown finishes");
    assert!(probe.torn_down(), "teardown ran before shutdown returned");
    assert!(handle.thread.lock().is_none(), "the thread was joined");
    assert!(handle.list().is_empty(), "nothing is left to list");

    let err = handle.create(key(2)).await.expect_err("after shutdown");
    assert!(matches!(err, WorkloadError::Stopped), "{err}");
    let err = handle
        .clone()
        .delete(&key(1))
        .await
        .expect_err("after shutdown");
    assert!(matches!(err, WorkloadError::Stopped), "{err}");
    tokio::time::timeout(WAIT, handle.shutdown())
        .await
        .expect("a second shutdown returns at once");
}

#[tokio::test]
async fn shutdown_waits_for_the_running_create() {
    let (engine, mut probe) = fake();
    let handle = spawned(engine).await;
    let create = create_in_background(&handle, key(1));
    probe.started().await;
    let shutdown = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!probe.torn_down(), "not while a create runs");
    assert!(!shutdown.is_finished());

    probe.release(1);
    finished(create)
        .await
        .expect("the running create completes");
    finished(shutdown).await;
    assert!(probe.torn_down());
}

#[tokio::test]
async fn dropping_every_handle_tears_down() {
    let (engine, probe) = fake();
    let handle = spawned(engine).await;
    drop(handle.clone());
    assert!(!probe.torn_down(), "a clone is still held");
    drop(handle);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !probe.torn_down() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no teardown after the last handle went"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_failed_setup_is_returned_by_spawn() {
    let spawned = WorkloadsHandle::spawn_with(|| -> Result<Fake, WorkloadError> {
        Err(WorkloadError::InvalidNet("no subnet".into()))
    })
    .await;
    let err = spawned.expect_err("setup failed");
    assert!(matches!(err, WorkloadError::InvalidNet(_)), "{err}");
}
