//! `netmanager run`: bring the node up and keep it up until SIGTERM/SIGINT.
//! Static mode takes peers from the config; dynamic mode (`[control]`)
//! joins with a token and takes them from signed records.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};
use overlay::Device;
use tokio::signal::unix::{signal, SignalKind};

use crate::api::{ApiServer, ApiState};
use crate::control::{self, ControlConfig, LocalSettings};
use crate::naming::Naming;
use crate::workload::{WorkloadNet, Workloads};
use crate::{metrics, NetmanagerError, NodeConfig};

/// The TUN carries the whole node-subnet pool; each node's own /26 sits on
/// its bridge (a longer prefix, so local traffic stays local).
const MESH_PREFIX_LEN: u8 = 16;
/// The bridge workloads hang off (one per node namespace).
const BRIDGE: &str = "grove-br";

pub async fn run(config: NodeConfig, join_token: Option<String>) -> Result<(), NetmanagerError> {
    match config.control.clone() {
        None => run_static(config).await,
        Some(control) => run_dynamic(config, control, join_token).await,
    }
}

async fn run_static(config: NodeConfig) -> Result<(), NetmanagerError> {
    let address = config
        .address
        .ok_or_else(|| NetmanagerError::Startup("static mode needs `address`".into()))?;
    let device_config = config.device_config(address)?;
    let api = ApiServer::bind(&config.control_socket)?;
    let device = Arc::new(tokio::task::block_in_place(|| Device::start(device_config))?);
    tracing::info!(
        control_socket = %config.control_socket.display(),
        %address,
        "netmanager running (static mode); `netmanager status` shows peers"
    );
    let naming = Naming::start(&config, address.addr()).await?;
    let names = config.peers.iter().map(|p| (p.public_key.to_string(), p.node_name())).collect();
    let rtts = tokio::spawn(Naming::follow_rtts(naming.directory.clone(), device.clone(), names));
    let serve = tokio::spawn(api.serve(Arc::new(ApiState {
        device: device.clone(),
        directory: naming.directory.clone(),
        local: naming.local.clone(),
        control: None,
        workloads: None,
        dns_stats: naming.stats(),
        policy: config.dns.policy.clone(),
    })));
    wait_for_termination().await;
    tracing::info!("shutting down");
    serve.abort();
    rtts.abort();
    let _ = serve.await; // drops the API server, removing its socket
    let _ = rtts.await;
    naming.shutdown().await;
    stop_device(device);
    Ok(())
}

async fn run_dynamic(config: NodeConfig, control: ControlConfig, join_token: Option<String>) -> Result<(), NetmanagerError> {
    let api = ApiServer::bind(&config.control_socket)?;
    let token = match join_token.or_else(|| control.join_token.clone()) {
        Some(token) => Some(token),
        None => match &control.join_token_file {
            Some(path) => Some(read_token(path)?),
            None => None,
        },
    };
    let admitted = control::admit::admit(&control, token).await?;
    let subnet = admitted.subnet;
    let gateway = gateway_of(subnet)?;
    let address = IpNet::new(IpAddr::V4(gateway), MESH_PREFIX_LEN).map_err(|e| NetmanagerError::Startup(e.to_string()))?;
    let device_config = config.device_config(address)?;
    let device = Arc::new(tokio::task::block_in_place(|| Device::start(device_config))?);
    let net = WorkloadNet {
        bridge: BRIDGE.to_owned(),
        subnet,
        resolver: gateway,
        zone: config.dns.zone.to_string(),
        netns_prefix: netns_prefix(&admitted.keypair.public().to_peer_id().to_string()),
        route_mtu: Some(device.status().mtu),
    };
    let workloads = tokio::task::block_in_place(|| {
        Workloads::cleanup_stale(&net.netns_prefix);
        Workloads::setup(net)
    })
    .map_err(|e| NetmanagerError::Startup(format!("workload bridge: {e}")))?;
    let workloads = Arc::new(parking_lot::Mutex::new(Some(workloads)));
    let naming = Naming::start(&config, IpAddr::V4(gateway)).await?;
    let settings = LocalSettings {
        name: config.node_name(),
        location: config.location.map(|l| (l.lat, l.lon)),
        tunnel_port: config.listen_port,
    };
    let (handle, driver) = control::spawn(admitted, &control, settings, device.clone(), naming.directory.clone())?;
    let state = Arc::new(ApiState {
        device: device.clone(),
        directory: naming.directory.clone(),
        local: naming.local.clone(),
        control: Some(handle),
        workloads: Some(workloads.clone()),
        dns_stats: naming.stats(),
        policy: config.dns.policy.clone(),
    });
    let metrics_task = match control.metrics_listen {
        Some(listen) => {
            let listener = metrics::bind(listen).await.map_err(|e| NetmanagerError::Startup(e.to_string()))?;
            let source = state.clone();
            Some(tokio::spawn(metrics::serve(listener, Arc::new(move || source.metrics_inputs()))))
        }
        None => None,
    };
    tracing::info!(
        control_socket = %config.control_socket.display(),
        %subnet,
        node = %naming.local,
        "netmanager running (dynamic mode); `netmanager status` shows members"
    );
    let serve = tokio::spawn(api.serve(state));
    wait_for_termination().await;
    tracing::info!("shutting down");
    serve.abort();
    let _ = serve.await; // drops the API state (and the control handle it holds)
    if let Some(task) = metrics_task {
        task.abort();
        let _ = task.await;
    }
    // The driver stops once no handle is left; a straggling API connection
    // may still hold one, so do not wait for it forever.
    let abort = driver.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(2), driver).await.is_err() {
        abort.abort();
    }
    if let Some(workloads) = workloads.lock().take() {
        tokio::task::block_in_place(|| workloads.teardown());
    }
    naming.shutdown().await;
    stop_device(device);
    Ok(())
}

/// The bridge (and node) address: the subnet's first host.
fn gateway_of(subnet: Ipv4Net) -> Result<Ipv4Addr, NetmanagerError> {
    subnet
        .hosts()
        .next()
        .ok_or_else(|| NetmanagerError::Startup(format!("granted subnet {subnet} has no host addresses")))
}

/// Workload namespaces live machine-wide: name them after the node's
/// identity so nodes sharing a machine (tests, the demo) never collide.
fn netns_prefix(peer_id: &str) -> String {
    let tail: String = peer_id.chars().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
    format!("gw{}", tail.to_ascii_lowercase())
}

fn read_token(path: &std::path::Path) -> Result<String, NetmanagerError> {
    let text = control::identity::read_private(path)
        .map_err(|e| NetmanagerError::Startup(format!("join token file: {e}")))?;
    Ok(text.trim().to_owned())
}

fn stop_device(device: Arc<Device>) {
    match Arc::try_unwrap(device) {
        Ok(device) => tokio::task::block_in_place(|| device.shutdown()),
        Err(_) => tracing::warn!("device still referenced at shutdown; the TUN goes with the process"),
    }
    tracing::info!("stopped");
}

async fn wait_for_termination() {
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the process still dies on SIGTERM; wait forever.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
