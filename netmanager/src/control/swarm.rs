//! The libp2p stack of the control plane: TCP + noise + yamux carrying
//! identify, gossipsub (records, suspicions) and two request/response
//! protocols (control: join and sync; probe: RTT and coordinates).

use std::hash::{Hash, Hasher};
use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{gossipsub, identify, noise, request_response, tcp, yamux, Swarm};
use libp2p_identity::Keypair;

use super::protocol::{ControlCodec, ProbeCodec, CONTROL_PROTOCOL, GOSSIP_PREFIX, IDENTIFY_VERSION, PROBE_PROTOCOL};

/// A probe unanswered this long counts as a miss. Short on purpose: the
/// failure-detection budget is 2 s end to end.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(800);
/// Join and sync carry whole memberships; allow for slow links.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections between members stay up: probes and gossip use them.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub identify: identify::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub control: request_response::Behaviour<ControlCodec>,
    pub probe: request_response::Behaviour<ProbeCodec>,
}

#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error("building the control-plane transport: {0}")]
    Transport(String),
    #[error("gossip configuration: {0}")]
    Gossip(String),
}

pub fn build(keypair: Keypair) -> Result<Swarm<Behaviour>, SwarmError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| SwarmError::Transport(e.to_string()))?
        .with_behaviour(|key| behaviour(key).map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>))
        .map_err(|e| SwarmError::Transport(e.to_string()))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(IDLE_TIMEOUT)
                // Lazy negotiation sends the request with the protocol
                // proposal: a probe costs one round trip, not two, so its
                // timing is the path's RTT. Every member speaks our
                // protocols, so the optimism is never wasted.
                .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
        })
        .build();
    Ok(swarm)
}

fn behaviour(key: &Keypair) -> Result<Behaviour, SwarmError> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        .protocol_id_prefix(GOSSIP_PREFIX)
        .validation_mode(gossipsub::ValidationMode::Strict)
        // Records are identified by content, so the same record arriving by
        // two paths is delivered once.
        .message_id_fn(|message| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            message.data.hash(&mut hasher);
            gossipsub::MessageId::from(hasher.finish().to_be_bytes().to_vec())
        })
        .max_transmit_size(1 << 20)
        // Bounded queues: a slow peer loses gossip (sync repairs it) rather
        // than growing our memory.
        .connection_handler_queue_len(1000)
        .heartbeat_interval(Duration::from_millis(700))
        // A smaller mesh than the default 6: with flood publishing the first
        // hop already reaches every connected member, so the mesh only
        // repairs gaps, and each record travels ~4 times instead of ~6.
        .mesh_n(4)
        .mesh_n_low(3)
        .mesh_n_high(8)
        .gossip_lazy(3)
        .build()
        .map_err(|e| SwarmError::Gossip(e.to_string()))?;
    let gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_config)
        .map_err(|e| SwarmError::Gossip(e.to_owned()))?;
    let identify = identify::Behaviour::new(identify::Config::new(IDENTIFY_VERSION.to_owned(), key.public()));
    let control = request_response::Behaviour::with_codec(
        ControlCodec::control(),
        [(CONTROL_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(CONTROL_TIMEOUT),
    );
    let probe = request_response::Behaviour::with_codec(
        ProbeCodec::probe(),
        [(PROBE_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(PROBE_TIMEOUT),
    );
    Ok(Behaviour { identify, gossipsub, control, probe })
}
