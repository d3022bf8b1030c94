//! A cluster orchestrator: one link up to the root, one link down to each
//! worker, all over the mesh; [`state::ClusterState`] decides, this module
//! moves messages and follows the mesh's failure detector (netmanager's
//! membership events; [`failures`] says which workers they lose).

pub mod failures;
pub mod oracle;
pub mod state;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use crate::cli::cluster::ClusterArgs;
use crate::mesh::events::MeshEvent;
use crate::mesh::{connect_from_overlay, listen_on_overlay, resolve_target, LocalNode, MeshView};
use crate::proto::{link, read_frame, write_frame, Message, Tier, PROTOCOL_VERSION};
use oracle::MeshRtt;
use state::{ClusterState, ToWorker};

/// The port workers connect to, on the cluster node's overlay address.
pub const WORKER_PORT: u16 = 10002;
/// Reports to the root at least this often.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often RTTs (for latency constraints) are read from `/v1/members`;
/// membership itself comes from the event stream.
const RTT_REFRESH: Duration = Duration::from_secs(2);
const QUEUE: usize = 4096;
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

struct Cluster {
    state: Mutex<ClusterState>,
    node: LocalNode,
    /// The membership, as the event stream tells it (RTTs from [`RTT_REFRESH`]).
    mesh: Mutex<MeshView>,
    oracle: Mutex<MeshRtt>,
    workers: Mutex<HashMap<String, (u64, mpsc::Sender<Message>)>>,
    root: Mutex<Option<mpsc::Sender<Message>>>,
    generation: AtomicU64,
    changed: Notify,
    grace: Duration,
}

impl Cluster {
    fn state(&self) -> MutexGuard<'_, ClusterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn oracle(&self) -> MeshRtt {
        self.oracle.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn mesh(&self) -> MutexGuard<'_, MeshView> {
        self.mesh.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new membership (RTTs kept) and the latency oracle made from it.
    fn set_mesh(&self, mut view: MeshView) {
        let mut mesh = self.mesh();
        view.copy_rtts(&mesh);
        *self.oracle.lock().unwrap_or_else(|p| p.into_inner()) = MeshRtt::from_view(&view);
        *mesh = view;
    }

    fn to_workers(&self, out: Vec<ToWorker>) {
        let links = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        for (worker, message) in out {
            match links.get(&worker) {
                Some((_, tx)) if tx.try_send(message).is_ok() => {}
                _ => tracing::warn!(%worker, "no link to the worker; message dropped"),
            }
        }
        drop(links);
        self.changed.notify_one();
    }

    fn to_root(&self, message: Message) {
        if let Some(tx) = self.root.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if tx.try_send(message).is_err() {
                tracing::warn!("root link full or closed; message dropped");
            }
        }
    }

    fn on_root_message(&self, message: Message) {
        match message {
            Message::Place { key, spec } => {
                let oracle = self.oracle();
                let out = self.state().place(key, *spec, &oracle);
                self.to_workers(out);
            }
            Message::Stop { key } => {
                let out = self.state().stop(&key);
                self.to_workers(out);
            }
            Message::Logs { request, key, tail_bytes } => {
                let worker = self.state().instances.get(&key).and_then(|p| p.worker.clone());
                match worker {
                    Some(worker) => self.to_workers(vec![(worker, Message::Logs { request, key, tail_bytes })]),
                    None => self.to_root(Message::LogsReply { request, result: Err("not on a worker of this cluster".into()) }),
                }
            }
            other => tracing::debug!("unexpected message from the root: {other:?}"),
        }
    }

    fn on_worker_message(&self, worker: &str, message: Message) {
        match message {
            Message::WorkerStatus { worker: mut report, instances } => {
                if report.location.is_none() {
                    // The mesh knows where each member is; the worker need not be told.
                    report.location = dns::Label::parse(worker).and_then(|name| self.oracle().geo.areas.get(&name).copied());
                }
                let out = self.state().worker_status(worker, report, instances);
                self.to_workers(out);
                // A status in flight when the mesh declared its node dead
                // must not bring the worker back: the mesh decides.
                if self.mesh().holds_down(worker) {
                    self.worker_lost(worker, "the mesh holds its node dead");
                }
            }
            Message::LogsReply { request, result } => self.to_root(Message::LogsReply { request, result }),
            other => tracing::debug!(%worker, "unexpected message from a worker: {other:?}"),
        }
    }

    fn worker_lost(&self, worker: &str, why: &str) {
        let oracle = self.oracle();
        let out = self.state().worker_lost(worker, &oracle);
        tracing::warn!(%worker, moved = out.len(), "worker lost ({why}); its instances move");
        self.to_workers(out);
    }
}

/// Runs the cluster until SIGINT or SIGTERM.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let node = LocalNode::new(&args.node.netmanager_socket);
    let view = node.wait_ready().await;
    let cluster = Arc::new(Cluster {
        state: Mutex::new(ClusterState::default()),
        node: node.clone(),
        mesh: Mutex::new(view.clone()),
        oracle: Mutex::new(MeshRtt::from_view(&view)),
        workers: Mutex::new(HashMap::new()),
        root: Mutex::new(None),
        generation: AtomicU64::new(0),
        changed: Notify::new(),
        grace: args.worker_grace,
    });
    let listener = listen_on_overlay(&view, args.worker_port).await?;
    tracing::info!(node = %view.local_name, address = %view.local_address(), port = args.worker_port, "waiting for workers on the overlay");
    let accepting = cluster.clone();
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let cluster = accepting.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve_worker(&cluster, stream, peer).await {
                            tracing::info!(%peer, "worker link ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("accepting a worker failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    tokio::spawn(watch_mesh(cluster.clone()));
    tokio::spawn(refresh_rtts(cluster.clone()));
    tokio::spawn(report_loop(cluster.clone()));
    let root_link = tokio::spawn(root_link(cluster.clone(), args.root.clone()));
    crate::root::shutdown_signal().await;
    root_link.abort();
    tracing::info!("stopping");
    Ok(())
}

/// Keeps the link to the root up, reconnecting with backoff.
async fn root_link(cluster: Arc<Cluster>, target: String) {
    let down = || *cluster.root.lock().unwrap_or_else(|p| p.into_inner()) = None;
    link::redial("root", || connect_root(&cluster, &target), down).await;
}

/// Hands the root's delegation to the local netmanager: from then on the
/// site's workers join with tokens from this node (`netmanager token
/// create` here). A failure is logged, not fatal: workers can still join
/// through the authority.
async fn install_delegation(cluster: &Cluster, delegation: String) {
    match cluster.node.install_delegation(delegation).await {
        Ok(state) => tracing::info!(block = %state.block, "admitting this site's workers into the delegated block"),
        Err(e) => tracing::warn!("the root's delegation was not installed: {e}"),
    }
}

async fn connect_root(cluster: &Arc<Cluster>, target: &str) -> anyhow::Result<()> {
    let view = cluster.node.view().await?;
    let address = resolve_target(&view, target, crate::root::CLUSTER_PORT)?;
    let stream = connect_from_overlay(&view, address).await?;
    let (mut reader, mut writer) = stream.into_split();
    write_frame(&mut writer, &Message::Hello { version: PROTOCOL_VERSION, tier: Tier::Cluster, location: None }).await?;
    match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut reader)).await?? {
        Some(Message::Welcome { name, delegation }) => {
            tracing::info!(root = %address, as_name = %name, "registered with the root");
            if let Some(delegation) = delegation {
                install_delegation(cluster, delegation).await;
            }
        }
        Some(Message::Refused { reason }) => anyhow::bail!("the root refused this cluster: {reason}"),
        other => anyhow::bail!("unexpected answer from the root: {other:?}"),
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    *cluster.root.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    cluster.changed.notify_one();
    link::pump(reader, writer, rx, |message| {
        cluster.on_root_message(message);
        std::future::ready(())
    })
    .await
}

/// Reports every second, and right after anything changed.
async fn report_loop(cluster: Arc<Cluster>) {
    loop {
        let _ = tokio::time::timeout(REPORT_EVERY, cluster.changed.notified()).await;
        // Let a burst of changes land in one report.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let connected = cluster.root.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        if connected {
            let report = cluster.state().report();
            cluster.to_root(report);
        }
    }
}

/// Follows the mesh's membership events: a worker whose node the failure
/// detector holds dead, or that left or was removed, is lost at once; a
/// snapshot (after netmanager restarted, or a resync) is reconciled.
async fn watch_mesh(cluster: Arc<Cluster>) {
    let mut watch = cluster.node.watch_members();
    loop {
        let event = watch.next().await;
        let Some(view) = watch.view() else { continue };
        if let MeshEvent::Member { name, change } = &event {
            tracing::debug!(member = %name, ?change, "mesh event");
        }
        cluster.set_mesh(view.clone());
        let lost = failures::lost_workers(&cluster.state(), &event, view);
        for (worker, why) in lost {
            cluster.worker_lost(&worker, &why);
        }
    }
}

/// RTTs change all the time and are no membership events: read them now and then.
async fn refresh_rtts(cluster: Arc<Cluster>) {
    loop {
        tokio::time::sleep(RTT_REFRESH).await;
        let Ok(fresh) = cluster.node.view().await else { continue };
        let mut mesh = cluster.mesh();
        mesh.copy_rtts(&fresh);
        *cluster.oracle.lock().unwrap_or_else(|p| p.into_inner()) = MeshRtt::from_view(&mesh);
    }
}

/// The member a connecting address belongs to: the stream's view, else
/// (a member newer than the last event read) a fresh `/v1/members`.
async fn identify(cluster: &Cluster, ip: std::net::Ipv4Addr) -> anyhow::Result<Option<String>> {
    let known = cluster.mesh().identify(ip);
    if known.is_some() {
        return Ok(known);
    }
    Ok(cluster.node.view().await?.identify(ip))
}

async fn serve_worker(cluster: &Arc<Cluster>, stream: TcpStream, peer: SocketAddr) -> anyhow::Result<()> {
    let IpAddr::V4(ip) = peer.ip() else { anyhow::bail!("not IPv4") };
    let (mut reader, mut writer) = stream.into_split();
    let Some(name) = identify(cluster, ip).await? else {
        tracing::warn!(%peer, "refused a worker: its address is in no live mesh member's subnet");
        let _ = tokio::time::timeout(Duration::from_secs(1), write_frame(&mut writer, &Message::Refused { reason: format!("{ip} is not a live member of this mesh") })).await;
        return Ok(());
    };
    match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut reader)).await?? {
        Some(Message::Hello { version, tier: Tier::Worker, .. }) if version == PROTOCOL_VERSION => {}
        other => {
            let reason = format!("expected a worker hello of protocol version {PROTOCOL_VERSION}, got {other:?}");
            let _ = write_frame(&mut writer, &Message::Refused { reason: reason.clone() }).await;
            anyhow::bail!(reason);
        }
    }
    write_frame(&mut writer, &Message::Welcome { name: name.clone(), delegation: None }).await?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let generation = cluster.generation.fetch_add(1, Ordering::Relaxed);
    cluster.workers.lock().unwrap_or_else(|p| p.into_inner()).insert(name.clone(), (generation, tx));
    tracing::info!(worker = %name, %ip, "worker registered");
    let outcome = link::pump(reader, writer, rx, |message| {
        cluster.on_worker_message(&name, message);
        std::future::ready(())
    })
    .await;
    let current = {
        let mut links = cluster.workers.lock().unwrap_or_else(|p| p.into_inner());
        let current = links.get(&name).is_some_and(|(g, _)| *g == generation);
        if current {
            links.remove(&name);
        }
        current
    };
    if current {
        tracing::warn!(worker = %name, "worker link closed; {} ms for it to come back", cluster.grace.as_millis());
        let cluster = cluster.clone();
        tokio::spawn(async move {
            tokio::time::sleep(cluster.grace).await;
            let back = cluster.workers.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&name);
            if !back {
                cluster.worker_lost(&name, "its link stayed down");
            }
        });
    }
    outcome
}
