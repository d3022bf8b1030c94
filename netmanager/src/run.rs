//! `netmanager run`: bring the node up and keep it up until SIGTERM/SIGINT.

use std::sync::Arc;

use overlay::Device;
use tokio::signal::unix::{signal, SignalKind};

use crate::api::{ApiServer, ApiState};
use crate::naming::Naming;
use crate::{NetmanagerError, NodeConfig};

/// Runs the node until a termination signal, then tears the TUN down.
pub async fn run(config: NodeConfig) -> Result<(), NetmanagerError> {
    let device_config = config.device_config()?;
    let api = ApiServer::bind(&config.control_socket)?;
    let device = Arc::new(tokio::task::block_in_place(|| Device::start(device_config))?);
    tracing::info!(
        control_socket = %config.control_socket.display(),
        address = %config.address,
        "netmanager running (static mode); `netmanager status` shows peers"
    );
    let naming = Naming::start(&config).await?;
    let names = config.peers.iter().map(|p| (p.public_key.to_string(), p.node_name())).collect();
    let rtts = tokio::spawn(Naming::follow_rtts(naming.directory.clone(), device.clone(), names));
    let serve = tokio::spawn(api.serve(Arc::new(ApiState {
        device: device.clone(),
        directory: naming.directory.clone(),
        local: naming.local.clone(),
    })));
    wait_for_termination().await;
    tracing::info!("shutting down");
    serve.abort();
    rtts.abort();
    let _ = serve.await; // drops the API server, removing its socket
    let _ = rtts.await;
    naming.shutdown().await;
    match Arc::try_unwrap(device) {
        Ok(device) => tokio::task::block_in_place(|| device.shutdown()),
        Err(_) => tracing::warn!("device still referenced at shutdown; the TUN goes with the process"),
    }
    tracing::info!("stopped");
    Ok(())
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
