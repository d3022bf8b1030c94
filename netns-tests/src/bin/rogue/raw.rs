//! A swarm that speaks `/grove/control/2` with a codec writing whatever
//! bytes it is given: length prefixes that lie, frames beyond every limit,
//! bodies that only look like records. What a peer sends back is read
//! raw (bounded here, so the rogue's own memory stays small).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context};
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, Codec, Message, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, PeerId, StreamProtocol, Swarm};
use libp2p_identity::Keypair;
use netmanager::control::admission::join::multiaddr;
use netmanager::control::wire::protocol::{CONTROL_PROTOCOL, IDENTIFY_VERSION};

/// Bytes of a frame the rogue reads at most (it only looks at them).
const READ_CAP: usize = 2 << 20;

/// Requests and responses are whole wire images: length prefix included.
#[derive(Clone, Default)]
pub struct RawCodec;

async fn read_raw(io: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = (u32::from_be_bytes(len) as usize).min(READ_CAP);
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_raw(io: &mut (impl AsyncWrite + Unpin), bytes: Vec<u8>) -> io::Result<()> {
    io.write_all(&bytes).await?;
    io.close().await
}

impl Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>> {
        read_raw(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>> {
        read_raw(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T, bytes: Vec<u8>) -> io::Result<()> {
        write_raw(io, bytes).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T, bytes: Vec<u8>) -> io::Result<()> {
        write_raw(io, bytes).await
    }
}

#[derive(NetworkBehaviour)]
pub struct RawBehaviour {
    pub identify: identify::Behaviour,
    pub control: request_response::Behaviour<RawCodec>,
}

pub fn build(keypair: Keypair) -> anyhow::Result<Swarm<RawBehaviour>> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| anyhow!("transport: {e}"))?
        .with_behaviour(|key| RawBehaviour {
            identify: identify::Behaviour::new(identify::Config::new(IDENTIFY_VERSION.to_owned(), key.public())),
            control: request_response::Behaviour::with_codec(
                RawCodec,
                [(CONTROL_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            ),
        })
        .map_err(|e| anyhow!("behaviour: {e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}

/// Dials `addr` and waits for the connection.
pub async fn connect(swarm: &mut Swarm<RawBehaviour>, addr: SocketAddr, timeout: Duration) -> anyhow::Result<PeerId> {
    swarm.dial(multiaddr(addr)).with_context(|| format!("dialing {addr}"))?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .map_err(|_| anyhow!("no connection to {addr} in {timeout:?}"))?;
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => return Ok(peer_id),
            SwarmEvent::OutgoingConnectionError { error, .. } => return Err(anyhow!("dialing {addr}: {error}")),
            _ => {}
        }
    }
}

/// Sends raw `bytes` as a request; the raw answer or why there is none.
pub async fn request(swarm: &mut Swarm<RawBehaviour>, peer: PeerId, bytes: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, String> {
    let id: OutboundRequestId = swarm.behaviour_mut().control.send_request(&peer, bytes);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let Ok(event) = tokio::time::timeout_at(deadline, swarm.select_next_some()).await else {
            return Err("no answer in time".into());
        };
        match event {
            SwarmEvent::Behaviour(RawBehaviourEvent::Control(request_response::Event::Message {
                message: Message::Response { request_id, response },
                ..
            })) if request_id == id => return Ok(response),
            SwarmEvent::Behaviour(RawBehaviourEvent::Control(request_response::Event::OutboundFailure { request_id, error, .. }))
                if request_id == id =>
            {
                return Err(error.to_string())
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if peer_id == peer => return Err("connection closed".into()),
            _ => {}
        }
    }
}

/// A length-prefixed frame around `body` (the prefix tells the truth).
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}
