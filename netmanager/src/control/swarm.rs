//! The libp2p stack of the control plane: TCP + noise + yamux carrying
//! identify, gossipsub (records, suspicions, leaves, revocations) and two
//! request/response protocols (control: join and sync; probe: RTT,
//! coordinates, indirect probes), behind connection limits.
//!
//! Gossipsub validates every message through us before forwarding it
//! (`validate_messages`), identifies messages by a SHA-256 of their bytes
//! (decoding is strict, so one record has one encoding), and graylists
//! strangers: peers the control plane has not recognised as members get an
//! application score far below gossipsub's graylist threshold, so nothing is
//! published to them and their RPCs are dropped unread.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{connection_limits, gossipsub, identify, noise, request_response, tcp, yamux, Swarm};
use libp2p_identity::Keypair;
use sha2::{Digest, Sha256};

use super::gate::Gate;
use super::wire::protocol::{ControlCodec, ProbeCodec, CONTROL_PROTOCOL, GOSSIP_PREFIX, IDENTIFY_VERSION, PROBE_PROTOCOL};

/// libp2p's own deadline for a probe; the node's (shorter) one decides
/// failure detection, this only frees the stream.
const PROBE_STREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Join and sync carry pages of records; allow for slow links.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections between members stay up: probes and gossip use them.
/// Strangers are closed by the node long before this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Streams one connection may have open per protocol: a peer that never
/// reads its answers pins at most this many pages.
const CONTROL_STREAMS: usize = 4;
const PROBE_STREAMS: usize = 32;
/// Totals across all peers (the process raises its file limit to fit).
const MAX_ESTABLISHED: u32 = 2048;
const MAX_PENDING_INCOMING: u32 = 64;
const MAX_PER_PEER: u32 = 2;
/// Largest gossip message: one instance set (64 KiB payload) and its signature.
const MAX_GOSSIP: usize = 72 << 10;
/// The application score given to strangers: below every threshold.
pub const STRANGER_SCORE: f64 = -1000.0;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub gate: Gate,
    pub limits: connection_limits::Behaviour,
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
        .validate_messages()
        // Records are identified by content, so the same record arriving by
        // two paths (or published by two nodes) is delivered once. SHA-256,
        // not a std hasher: ids must agree across builds and be hard to
        // collide on purpose.
        .message_id_fn(|message| gossipsub::MessageId::from(Sha256::digest(&message.data).to_vec()))
        .max_transmit_size(MAX_GOSSIP)
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
    let mut gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_config)
        .map_err(|e| SwarmError::Gossip(e.to_owned()))?;
    let params = gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        // Nodes of one testbed or site may share an address.
        ip_colocation_factor_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    gossipsub.with_peer_score(params, gossipsub::PeerScoreThresholds::default()).map_err(SwarmError::Gossip)?;
    let identify = identify::Behaviour::new(identify::Config::new(IDENTIFY_VERSION.to_owned(), key.public()));
    let control = request_response::Behaviour::with_codec(
        ControlCodec::control(),
        [(CONTROL_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(CONTROL_TIMEOUT).with_max_concurrent_streams(CONTROL_STREAMS),
    );
    let probe = request_response::Behaviour::with_codec(
        ProbeCodec::probe(),
        [(PROBE_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(PROBE_STREAM_TIMEOUT).with_max_concurrent_streams(PROBE_STREAMS),
    );
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(MAX_ESTABLISHED))
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
            .with_max_established_per_peer(Some(MAX_PER_PEER)),
    );
    Ok(Behaviour { gate: Gate::default(), limits, identify, gossipsub, control, probe })
}
