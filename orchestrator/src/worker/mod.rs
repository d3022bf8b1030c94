//! The worker: runs the instances its cluster starts here, each a process
//! in a network namespace netmanager makes for it ([`crate::runtime`]
//! supervises them), and reports their states up.

pub mod host;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dns::{InstanceKey, NamedPort};
use netmanager::api::types::WorkloadSpec;
use tokio::sync::{mpsc, Notify};

use crate::cli::worker::WorkerArgs;
use crate::mesh::{connect_from_overlay, resolve_target, LocalNode};
use crate::model::{Capacity, InstanceState};
use crate::proto::{link, read_frame, write_frame, InstanceReport, Message, Tier, WorkerReport, PROTOCOL_VERSION};
use crate::runtime::{LaunchSpec, RestartPolicy, RuntimeEvent, Supervisor};
use crate::sla::ServiceSpec;

const REPORT_EVERY: Duration = Duration::from_secs(1);
const QUEUE: usize = 4096;

/// One instance on this worker.
#[derive(Clone, Debug)]
struct Local {
    spec: ServiceSpec,
    state: InstanceState,
    reason: Option<String>,
    address: Option<Ipv4Addr>,
    restarts: u32,
}

struct Worker {
    instances: Mutex<BTreeMap<InstanceKey, Local>>,
    /// Runtime id → instance.
    ids: Mutex<HashMap<String, InstanceKey>>,
    supervisor: Supervisor,
    node: LocalNode,
    cluster: Mutex<Option<mpsc::Sender<Message>>>,
    changed: Notify,
    capacity: Capacity,
}

/// The runtime's id for an instance: `<service>.<app>.<namespace>-<number>`.
pub fn runtime_id(key: &InstanceKey) -> String {
    format!("{}.{}.{}-{}", key.service, key.app, key.namespace, key.number)
}

impl Worker {
    fn instances(&self) -> MutexGuard<'_, BTreeMap<InstanceKey, Local>> {
        self.instances.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, key: &InstanceKey, state: InstanceState, reason: Option<String>, restarts: Option<u32>) {
        if let Some(local) = self.instances().get_mut(key) {
            local.state = state;
            local.reason = reason;
            if let Some(restarts) = restarts {
                local.restarts = restarts;
            }
        }
        self.changed.notify_one();
    }

    fn to_cluster(&self, message: Message) {
        if let Some(tx) = self.cluster.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.try_send(message);
        }
    }

    fn status(&self) -> Message {
        let instances = self.instances();
        let reserved = instances
            .values()
            .filter(|l| l.state.occupies_worker())
            .map(|l| Capacity::request(&l.spec.resources))
            .fold(Capacity::ZERO, Capacity::saturating_add);
        let worker = WorkerReport {
            name: String::new(),
            arch: std::env::consts::ARCH.to_owned(),
            capacity: self.capacity,
            reserved,
            load: host::load(),
            location: None,
        };
        let instances = instances
            .iter()
            .map(|(key, l)| InstanceReport {
                key: *key,
                state: l.state,
                reason: l.reason.clone(),
                node: None,
                address: l.address,
                restarts: l.restarts,
            })
            .collect();
        Message::WorkerStatus { worker, instances }
    }

    async fn on_message(self: &Arc<Self>, message: Message) {
        match message {
            Message::Start { key, spec } => {
                let stale = self.instances().get(&key).map(|l| l.state);
                match stale {
                    Some(InstanceState::Creating | InstanceState::Running | InstanceState::NodeScheduled) => return,
                    Some(_) => self.stop(key).await,
                    None => {}
                }
                self.instances().insert(key, Local { spec: (*spec).clone(), state: InstanceState::Creating, reason: None, address: None, restarts: 0 });
                self.changed.notify_one();
                let worker = self.clone();
                tokio::spawn(async move { worker.start(key, *spec).await });
            }
            Message::Stop { key } => {
                let worker = self.clone();
                tokio::spawn(async move { worker.stop(key).await });
            }
            Message::Logs { request, key, tail_bytes } => {
                let result = self.supervisor.logs(&runtime_id(&key), tail_bytes).map_err(|e| e.to_string());
                self.to_cluster(Message::LogsReply { request, result });
            }
            other => tracing::debug!("unexpected message from the cluster: {other:?}"),
        }
    }

    async fn start(&self, key: InstanceKey, spec: ServiceSpec) {
        let ports = spec
            .ports
            .iter()
            .filter_map(|p| NamedPort::new(&format!("p{}", p.service_port), p.protocol, p.service_port).ok())
            .collect();
        let workload = WorkloadSpec {
            service: key.service.to_string(),
            app: key.app.to_string(),
            namespace: key.namespace.to_string(),
            number: key.number,
            ports,
        };
        let created = match self.node.create_workload(workload).await {
            Ok(created) => created,
            Err(e) => {
                self.set(&key, InstanceState::Failed, Some(format!("netmanager could not make its namespace: {e}")), None);
                return;
            }
        };
        if let Some(local) = self.instances().get_mut(&key) {
            local.address = Some(created.workload.address);
        }
        let id = runtime_id(&key);
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), key);
        let mut env: Vec<(String, String)> = spec.environment.iter().map(|e| (e.name.clone(), e.value.clone())).collect();
        env.push(("GROVE_INSTANCE".into(), format!("instance-{}.{}.{}.{}", key.number, key.service, key.app, key.namespace)));
        env.push(("GROVE_ADDRESS".into(), created.workload.address.to_string()));
        let launch = LaunchSpec {
            id,
            netns: Some(created.workload.netns.clone()),
            program: spec.command.program.clone(),
            args: spec.command.args.clone(),
            env,
            memory_mib: spec.resources.memory_mib,
            vcpus: spec.resources.vcpus,
            one_shot: spec.one_shot,
        };
        if let Err(e) = self.supervisor.start(launch).await {
            self.set(&key, InstanceState::Failed, Some(e.to_string()), None);
            let _ = self.node.delete_workload(key).await;
        }
    }

    async fn stop(&self, key: InstanceKey) {
        let existed = self.instances().remove(&key).is_some();
        let id = runtime_id(&key);
        let _ = self.supervisor.stop(&id).await;
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        if existed {
            if let Err(e) = self.node.delete_workload(key).await {
                tracing::debug!(instance = %key, "workload not removed: {e}");
            }
            tracing::info!(instance = %key, "stopped");
        }
        self.changed.notify_one();
    }

    async fn on_event(&self, event: RuntimeEvent) {
        let key_of = |id: &str| self.ids.lock().unwrap_or_else(|p| p.into_inner()).get(id).copied();
        match event {
            RuntimeEvent::Started { id, restarts, .. } => {
                if let Some(key) = key_of(&id) {
                    tracing::info!(instance = %key, restarts, "running");
                    self.set(&key, InstanceState::Running, None, Some(restarts));
                }
            }
            RuntimeEvent::Exited { id, reason, restarting_in, .. } => {
                tracing::info!(%id, "{reason}; restarting in {:?}", restarting_in);
            }
            RuntimeEvent::Completed { id } => {
                if let Some(key) = key_of(&id) {
                    self.set(&key, InstanceState::Completed, None, None);
                }
            }
            RuntimeEvent::GaveUp { id, reason } => {
                if let Some(key) = key_of(&id) {
                    tracing::warn!(instance = %key, "gave up: {reason}");
                    self.set(&key, InstanceState::Failed, Some(reason), None);
                    // Out of DNS at once: nobody should be sent to it.
                    let _ = self.node.delete_workload(key).await;
                }
            }
            RuntimeEvent::Stopped { .. } => {}
        }
    }
}

/// Runs the worker until SIGINT or SIGTERM.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let node = LocalNode::new(&args.node.netmanager_socket);
    let view = node.wait_ready().await;
    // Namespaces an earlier run of this worker left behind run nothing now.
    if let Ok(stale) = node.workloads().await {
        for w in stale {
            tracing::info!(instance = %w.key, "removing a workload left by an earlier run");
            let _ = node.delete_workload(w.key).await;
        }
    }
    let (supervisor, mut events) = Supervisor::new(args.state_dir.clone(), &format!("grove-{}", view.local_name), RestartPolicy::default())?;
    let capacity = host::capacity(args.cpu_millis, args.memory_mib);
    tracing::info!(cpu_millis = capacity.cpu_millis, memory_mib = capacity.memory_mib, "offering");
    let worker = Arc::new(Worker {
        instances: Mutex::new(BTreeMap::new()),
        ids: Mutex::new(HashMap::new()),
        supervisor,
        node,
        cluster: Mutex::new(None),
        changed: Notify::new(),
        capacity,
    });
    let handling = worker.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            handling.on_event(event).await;
        }
    });
    let reporting = worker.clone();
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(REPORT_EVERY, reporting.changed.notified()).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
            let status = reporting.status();
            reporting.to_cluster(status);
        }
    });
    let link = tokio::spawn(cluster_link(worker.clone(), args.cluster.clone()));
    crate::root::shutdown_signal().await;
    link.abort();
    tracing::info!("stopping: every instance is stopped and its namespace removed");
    let keys: Vec<InstanceKey> = worker.instances().keys().copied().collect();
    for key in keys {
        worker.stop(key).await;
    }
    worker.supervisor.stop_all().await;
    Ok(())
}

async fn cluster_link(worker: Arc<Worker>, target: String) {
    let down = || *worker.cluster.lock().unwrap_or_else(|p| p.into_inner()) = None;
    link::redial("cluster", || connect_cluster(&worker, &target), down).await;
}

async fn connect_cluster(worker: &Arc<Worker>, target: &str) -> anyhow::Result<()> {
    let view = worker.node.view().await?;
    let address = resolve_target(&view, target, crate::cluster::WORKER_PORT)?;
    let stream = connect_from_overlay(&view, address).await?;
    let (mut reader, mut writer) = stream.into_split();
    write_frame(&mut writer, &Message::Hello { version: PROTOCOL_VERSION, tier: Tier::Worker, location: None }).await?;
    match tokio::time::timeout(Duration::from_secs(5), read_frame(&mut reader)).await?? {
        Some(Message::Welcome { name, .. }) => tracing::info!(cluster = %address, as_name = %name, "registered with the cluster"),
        Some(Message::Refused { reason }) => anyhow::bail!("the cluster refused this worker: {reason}"),
        other => anyhow::bail!("unexpected answer from the cluster: {other:?}"),
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    tx.try_send(worker.status()).ok();
    *worker.cluster.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    link::pump(reader, writer, rx, |message| worker.on_message(message)).await
}
