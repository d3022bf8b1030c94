//! The root orchestrator: the user API, the cluster registry and the
//! placement of every instance on a cluster.
//!
//! [`state::RootState`] is the pure core; this module owns the clock, the
//! store ([`persist`]), the cluster links ([`links`]) and the loop that
//! reconciles every 200 ms or as soon as something changes.

mod api_impl;
mod links;
pub mod persist;
pub mod records;
pub mod state;
pub mod views;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use dns::Location;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::cli::root::RootArgs;
use crate::mesh::LocalNode;
use crate::proto::Message;
use crate::store::Store;
use state::{Outbound, RootState};

/// The port clusters connect to, on the root node's overlay address.
pub const CLUSTER_PORT: u16 = 10001;
/// How often the root reconciles when nothing wakes it.
const TICK: Duration = Duration::from_millis(200);

/// Milliseconds since the epoch: instance times survive a restart.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

type LogsReply = Result<(String, u64), String>;

/// The running root.
pub struct Root {
    state: Mutex<RootState>,
    store: Box<dyn Store>,
    /// Serialises store writes so a newer copy is never overwritten by an older one.
    persist_lock: Mutex<()>,
    node: LocalNode,
    links: Mutex<HashMap<String, (u64, mpsc::Sender<Message>)>>,
    generation: AtomicU64,
    logs: Mutex<HashMap<u64, oneshot::Sender<LogsReply>>>,
    next_request: AtomicU64,
    kick: Notify,
    cluster_timeout: Duration,
}

impl Root {
    /// A root over `store`, restoring what it holds.
    pub fn new(store: Box<dyn Store>, node: LocalNode, cluster_timeout: Duration) -> anyhow::Result<Root> {
        let (apps, services) = persist::load(store.as_ref()).context("reading the root's store")?;
        tracing::info!(apps = apps.len(), services = services.len(), "state restored from the store");
        Ok(Root {
            state: Mutex::new(RootState::restore(apps, services)),
            store,
            persist_lock: Mutex::new(()),
            node,
            links: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            logs: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            kick: Notify::new(),
            cluster_timeout,
        })
    }

    fn state(&self) -> MutexGuard<'_, RootState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues messages for clusters; a full or closed link drops them
    /// (the reconcile loop resends what is still needed).
    fn send(&self, out: Vec<Outbound>) {
        if out.is_empty() {
            return;
        }
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        for (cluster, message) in out {
            match links.get(&cluster) {
                Some((_, tx)) => {
                    if tx.try_send(message).is_err() {
                        tracing::warn!(%cluster, "cluster link full or closed; message dropped");
                    }
                }
                None => tracing::debug!(%cluster, "no link to the cluster; message dropped"),
            }
        }
    }

    /// Writes what changed to the store; returns once it is durable.
    fn persist(&self) -> Result<(), crate::store::StoreError> {
        let _order = self.persist_lock.lock().unwrap_or_else(|p| p.into_inner());
        let batch = {
            let mut state = self.state();
            let dirty = state.take_dirty();
            if dirty.is_empty() {
                return Ok(());
            }
            persist::Batch::collect(&state, dirty)
        };
        tokio::task::block_in_place(|| batch.write(self.store.as_ref()))
    }

    fn attach(&self, name: &str, address: Ipv4Addr, location: Option<Location>, tx: mpsc::Sender<Message>) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        self.links.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), (generation, tx));
        self.state().cluster_connected(name, address, location, now_ms());
        self.kick.notify_one();
        generation
    }

    fn detach(&self, name: &str, generation: u64) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if links.get(name).is_some_and(|(g, _)| *g == generation) {
            links.remove(name);
            drop(links);
            self.state().cluster_disconnected(name, now_ms());
            self.kick.notify_one();
        }
    }

    fn on_cluster_message(&self, cluster: &str, message: Message) {
        match message {
            Message::Report { workers, instances } => {
                let out = self.state().apply_report(cluster, workers, instances, now_ms());
                self.send(out);
                self.kick.notify_one();
            }
            Message::LogsReply { request, result } => {
                if let Some(reply) = self.logs.lock().unwrap_or_else(|p| p.into_inner()).remove(&request) {
                    let _ = reply.send(result);
                }
            }
            other => tracing::debug!(%cluster, "unexpected message from a cluster: {other:?}"),
        }
    }

    /// One reconcile step: place, retry, resend; then persist.
    fn reconcile(&self) {
        let out = self.state().reconcile(now_ms(), self.cluster_timeout);
        self.send(out);
        if let Err(e) = self.persist() {
            tracing::error!("writing the root's store failed: {e}; will retry");
        }
    }

    /// Refreshes what the mesh says about locations (areas for latency
    /// constraints, cluster locations).
    async fn refresh_mesh(&self) {
        let Ok(view) = self.node.view().await else { return };
        let mut state = self.state();
        state.areas.areas = view.peers.iter().filter_map(|p| Some((dns::Label::parse(&p.name)?, p.location?))).collect();
        if let (Some(name), Some(location)) = (dns::Label::parse(&view.local_name), view.local_location) {
            state.areas.areas.insert(name, location);
        }
        for cluster in state.clusters.values_mut() {
            if let Some(location) = view.location_of(&cluster.name) {
                cluster.location = Some(location);
            }
        }
    }
}

/// Runs the root until SIGINT or SIGTERM.
pub async fn run(args: RootArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.state_dir).with_context(|| format!("creating the state directory {}", args.state_dir.display()))?;
    let store_path = args.state_dir.join("root.redb");
    let store = crate::store::RedbStore::open(&store_path).with_context(|| format!("opening the store {}", store_path.display()))?;
    let token_path = args.token_file.clone().unwrap_or_else(|| args.state_dir.join("api-token"));
    let token = crate::api::ApiToken::load_or_create(&token_path).with_context(|| format!("API token {}", token_path.display()))?;
    let tls = args.tls.mode()?.server_tls(&args.state_dir, args.api).context("TLS for the user API")?;
    let node = LocalNode::new(&args.node.netmanager_socket);
    let root = Arc::new(Root::new(Box::new(store), node.clone(), args.cluster_timeout)?);

    // The API serves (and SIGTERM is heard) before the mesh is ready:
    // clients get answers, not a hanging backlog, while netmanager joins.
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(());
    });
    let mut api = crate::api::ApiServer::bind(args.api, token, root.clone()).await.with_context(|| format!("binding the API on {}", args.api))?;
    if let Some(tls) = tls {
        api = api.with_tls(tls);
    }
    let scheme = if api.is_tls() { "https" } else { "http" };
    tracing::info!(api = %api.local_addr(), scheme, token_file = %token_path.display(), "user API listening");
    let (api_stop, api_stopped) = oneshot::channel::<()>();
    let api_task = api.spawn(async {
        let _ = api_stopped.await;
    });

    let mesh = async {
        let view = node.wait_ready().await;
        let listener = crate::mesh::listen_on_overlay(&view, args.cluster_port).await?;
        tracing::info!(node = %view.local_name, address = %view.local_address(), port = args.cluster_port, "waiting for clusters on the overlay");
        tokio::spawn(links::accept_clusters(root.clone(), listener));
        let looping = root.clone();
        tokio::spawn(async move {
            let mut refreshed = tokio::time::Instant::now() - Duration::from_secs(10);
            loop {
                if refreshed.elapsed() > Duration::from_secs(2) {
                    looping.refresh_mesh().await;
                    refreshed = tokio::time::Instant::now();
                }
                looping.reconcile();
                let _ = tokio::time::timeout(TICK, looping.kick.notified()).await;
            }
        });
        std::future::pending::<()>().await;
        anyhow::Ok(())
    };
    tokio::select! {
        result = mesh => result?,
        _ = stopped => {}
    }
    let _ = api_stop.send(());
    let _ = api_task.await;
    tracing::info!("stopping");
    root.persist().context("final write of the store")?;
    Ok(())
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
