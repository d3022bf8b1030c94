//! `netmanager run`: bring the node up and keep it up until SIGTERM,
//! SIGINT or SIGHUP, then tear down what it made (a leaving dynamic node
//! says goodbye first). Static mode takes peers from the config; dynamic
//! mode (`[control]`) joins with a token and takes them from signed records.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use dns::NodeId;
use ipnet::{IpNet, Ipv4Net};
use overlay::{Device, PrivateKey};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::api::{ApiServer, ApiState, DynamicState, Mode};
use crate::control::admission::join::JoinAs;
use crate::control::{self, ControlConfig, ControlStart};
use crate::naming::Naming;
use crate::workload::{WorkloadNet, WorkloadsHandle};
use crate::{metrics, NetmanagerError, NodeConfig};

/// The TUN carries the whole node-subnet pool; each node's own /26 sits on
/// its bridge (a longer prefix, so local traffic stays local).
const MESH_PREFIX_LEN: u8 = 16;
/// The bridge workloads hang off (one per node namespace).
const BRIDGE: &str = "grove-br";

/// What `run` takes besides the config.
#[derive(Default)]
pub struct RunOptions {
    pub join_token: Option<String>,
    pub reset_authority: bool,
}

pub async fn run(config: NodeConfig, options: RunOptions) -> Result<(), NetmanagerError> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_termination().await;
        let _ = stop.send(true);
    });
    match config.control.clone() {
        None => run_static(config, stopped).await,
        Some(control) => run_dynamic(config, control, options, stopped).await,
    }
}

/// Resolves when `stopped` turns true.
async fn on_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

async fn run_static(config: NodeConfig, stopped: watch::Receiver<bool>) -> Result<(), NetmanagerError> {
    let address = config.address.ok_or_else(|| NetmanagerError::Startup("static mode needs `address`".into()))?;
    let device_config = config.device_config(address)?;
    let api = ApiServer::bind(&config.control_socket)?;
    let device = Arc::new(tokio::task::block_in_place(|| Device::start(device_config))?);
    tracing::info!(control_socket = %config.control_socket.display(), %address, "netmanager running (static mode); `netmanager status` shows peers");
    let local = NodeId::new(&config.node_name());
    let mut allow: Vec<IpNet> = vec![address.trunc()];
    allow.extend(config.peers.iter().flat_map(|p| p.allowed_ips.iter().copied()));
    let naming = Naming::start(&config, local.clone(), address.addr(), allow).await?;
    let names = config.peers.iter().map(|p| (p.public_key.to_string(), p.node_name())).collect();
    let rtts = tokio::spawn(Naming::follow_rtts(naming.directory.clone(), device.clone(), names));
    let state = Arc::new(ApiState {
        device: device.clone(),
        directory: naming.directory.clone(),
        local,
        dns_stats: naming.stats(),
        policy: config.dns.policy.clone(),
        zone: config.dns.zone.clone(),
        mode: Mode::Static,
        streams: Default::default(),
    });
    api.serve(state, on_stop(stopped)).await;
    tracing::info!("shutting down");
    rtts.abort();
    let _ = rtts.await;
    naming.shutdown().await;
    stop_device(device);
    Ok(())
}

async fn run_dynamic(config: NodeConfig, control: ControlConfig, options: RunOptions, stopped: watch::Receiver<bool>) -> Result<(), NetmanagerError> {
    let api = ApiServer::bind(&config.control_socket)?;
    let token = match options.join_token.or_else(|| control.join_token.clone()) {
        Some(token) => Some(token),
        None => match &control.join_token_file {
            Some(path) => Some(read_token(path)?),
            None => None,
        },
    };
    let wg_public_key = PrivateKey::load(&config.private_key_file)?.public_key().0;
    let pool = control.pool;
    let hint_addr = control::advertised(&control).ok().and_then(|a| a.first().copied()).map(|ip| SocketAddr::new(ip, control.listen.port()));
    let mut starting = control::start(ControlStart {
        config: control,
        join: JoinAs { name: config.name.clone(), wg_public_key, token, reset_authority: options.reset_authority },
        location: config.location,
        tunnel_port: config.listen_port,
    })?;
    let joined = match starting.joined().await {
        Ok(joined) => joined,
        Err(e) => {
            starting.abandon();
            return Err(e.into());
        }
    };
    let subnet = joined.info.subnet;
    let gateway = gateway_of(subnet)?;
    let address = IpNet::new(IpAddr::V4(gateway), MESH_PREFIX_LEN).map_err(|e| NetmanagerError::Startup(e.to_string()))?;
    let device_config = config.device_config(address)?;
    let device = Arc::new(tokio::task::block_in_place(|| Device::start(device_config))?);
    let mut net = WorkloadNet::new(BRIDGE, subnet, config.interface.clone(), netns_prefix(&joined.peer_id.to_string()));
    net.mesh_pool = pool;
    net.zone = config.dns.zone.to_string();
    net.route_mtu = Some(device.status().mtu);
    let workloads = WorkloadsHandle::spawn(net).await.map_err(|e| NetmanagerError::Startup(format!("workload bridge: {e}")))?;
    let local = NodeId::named(&joined.peer_id.to_string(), &joined.info.name);
    let naming = Naming::start(&config, local.clone(), IpAddr::V4(gateway), vec![IpNet::V4(subnet), IpNet::V4(pool)]).await?;
    let plane = starting.run(device.clone(), naming.directory.clone());
    let state = Arc::new(ApiState {
        device: device.clone(),
        directory: naming.directory.clone(),
        local,
        dns_stats: naming.stats(),
        policy: config.dns.policy.clone(),
        zone: config.dns.zone.clone(),
        mode: Mode::Dynamic(Box::new(DynamicState {
            control: plane.handle.clone(),
            workloads: workloads.clone(),
            admission: joined.admission,
            delegate: joined.delegate,
            authority: joined.authority,
            local_peer: joined.peer_id,
            control_addr: hint_addr,
        })),
        streams: Default::default(),
    });
    let metrics_task = match config.control.as_ref().and_then(|c| c.metrics_listen) {
        Some(listen) => match metrics::bind(listen).await {
            Ok(listener) => {
                let source = state.clone();
                Some(tokio::spawn(metrics::serve(listener, Arc::new(move || metrics::inputs(&source)))))
            }
            // F25: someone else on the port must not keep the node down.
            Err(e) => {
                tracing::warn!("metrics not served: {e}");
                None
            }
        },
        None => None,
    };
    tracing::info!(
        control_socket = %config.control_socket.display(),
        %subnet,
        node = %joined.info.name,
        "netmanager running (dynamic mode); `netmanager status` shows members"
    );
    api.serve(state, on_stop(stopped)).await;
    tracing::info!("shutting down");
    plane.shutdown().await;
    if let Some(task) = metrics_task {
        task.abort();
        let _ = task.await;
    }
    workloads.shutdown().await;
    naming.shutdown().await;
    stop_device(device);
    Ok(())
}

/// The `[control]` lines a joining node needs, authority pinned.
/// The bridge (and node) address: the subnet's first host.
fn gateway_of(subnet: Ipv4Net) -> Result<Ipv4Addr, NetmanagerError> {
    subnet.hosts().next().ok_or_else(|| NetmanagerError::Startup(format!("granted subnet {subnet} has no host addresses")))
}

/// Workload namespaces live machine-wide: name them after the node's
/// identity so nodes sharing a machine (tests, the demo) never collide.
fn netns_prefix(peer_id: &str) -> String {
    let tail: String = peer_id.chars().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
    format!("gw{}", tail.to_ascii_lowercase())
}

fn read_token(path: &std::path::Path) -> Result<String, NetmanagerError> {
    let text = crate::files::read_private(path).map_err(|e| NetmanagerError::Startup(format!("join token file: {e}")))?;
    Ok(text.trim().to_owned())
}

fn stop_device(device: Arc<Device>) {
    match Arc::try_unwrap(device) {
        Ok(device) => tokio::task::block_in_place(|| device.shutdown()),
        Err(_) => tracing::warn!("device still referenced at shutdown; the TUN goes with the process"),
    }
    tracing::info!("stopped");
}

/// SIGTERM, SIGINT or SIGHUP: every one ends with a clean teardown.
async fn wait_for_termination() {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup())) else {
        // Without signal handlers the process still dies on SIGTERM; wait forever.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
    }
}
