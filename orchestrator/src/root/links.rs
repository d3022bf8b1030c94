//! The root's side of the cluster links: accept over the overlay, check
//! that the peer is a mesh member, read its messages into the state and
//! write the state's messages out.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::Root;
use crate::proto::{link, read_frame, write_frame, Message, Tier, PROTOCOL_VERSION};

/// Messages queued per cluster before new ones are dropped (the reconcile
/// loop sends again what matters).
const QUEUE: usize = 4096;
/// A peer must say hello within this long.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections at once, members or not: a member cannot make the root
/// hold unbounded sockets.
const MAX_LINKS: usize = 512;

/// Accepts clusters until the listener fails.
pub async fn accept_clusters(root: Arc<Root>, listener: TcpListener) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_LINKS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accepting a cluster connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many cluster connections; refused");
            continue;
        };
        let root = root.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_cluster(&root, stream, peer).await {
                tracing::info!(%peer, "cluster link ended: {e}");
            }
            drop(permit);
        });
    }
}

async fn serve_cluster(root: &Arc<Root>, stream: TcpStream, peer: SocketAddr) -> anyhow::Result<()> {
    let IpAddr::V4(ip) = peer.ip() else { anyhow::bail!("not IPv4") };
    let (mut reader, mut writer) = stream.into_split();
    let view = root.node.view().await?;
    let Some(name) = view.identify(ip) else {
        tracing::warn!(%peer, "refused a cluster: its address is in no live mesh member's subnet");
        let refusal = Message::Refused { reason: format!("{ip} is not a live member of this mesh") };
        let _ = tokio::time::timeout(Duration::from_secs(1), write_frame(&mut writer, &refusal)).await;
        return Ok(());
    };
    let hello = tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut reader)).await??;
    let location = match hello {
        Some(Message::Hello { version, tier: Tier::Cluster, location }) if version == PROTOCOL_VERSION => location,
        other => {
            let reason = format!("expected a cluster hello of protocol version {PROTOCOL_VERSION}, got {other:?}");
            let _ = write_frame(&mut writer, &Message::Refused { reason: reason.clone() }).await;
            anyhow::bail!(reason);
        }
    };
    let location = location.or_else(|| view.location_of(&name));
    let delegation = delegation_for(root, &name).await;
    write_frame(&mut writer, &Message::Welcome { name: name.clone(), delegation }).await?;
    let (tx, rx) = mpsc::channel::<Message>(QUEUE);
    let generation = root.attach(&name, ip, location, tx);
    tracing::info!(cluster = %name, %ip, "cluster registered");
    let outcome = link::pump(reader, writer, rx, |message| {
        root.on_cluster_message(&name, message);
        std::future::ready(())
    })
    .await;
    root.detach(&name, generation);
    tracing::warn!(cluster = %name, "cluster disconnected");
    outcome
}

/// The mesh authority's delegation of a block to the cluster `name`, when
/// the root's node is the authority: the cluster then admits its site's
/// workers itself. Anything else (the root beside an ordinary member, an
/// authority that says no) leaves the cluster without one, logged once per
/// registration; workers then join through the authority as before.
async fn delegation_for(root: &Root, name: &str) -> Option<String> {
    match root.node.delegate(name).await {
        Ok(issued) => {
            tracing::info!(cluster = %name, block = %issued.entry.block, "delegated a block: the cluster admits its site's workers");
            Some(issued.delegation)
        }
        Err(e) => {
            tracing::warn!(cluster = %name, "no delegation for the cluster ({e}); its workers join through the authority");
            None
        }
    }
}
