//! The control plane's request/response protocols and their framing:
//! a big-endian u32 length, then a version-tagged postcard body
//! ([`super::records::encode`]). Our own protocol names, never IPFS's.

use std::io;
use std::marker::PhantomData;

use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::Codec;
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};

use super::admission::SubnetGrant;
use super::records::{decode, encode, InstanceSet, NodeRecord};
use super::signed::Signed;
use super::vivaldi::Coordinate;

pub const CONTROL_PROTOCOL: StreamProtocol = StreamProtocol::new("/grove/control/1");
pub const PROBE_PROTOCOL: StreamProtocol = StreamProtocol::new("/grove/probe/1");
pub const GOSSIP_PREFIX: &str = "/grove/gossip";
pub const IDENTIFY_VERSION: &str = "/grove/1";
pub const GOSSIP_TOPIC: &str = "grove/records/1";

/// Largest control frame: a full membership of a few thousand nodes.
const MAX_CONTROL_FRAME: usize = 16 << 20;
/// Probes are tiny; anything bigger is hostile.
const MAX_PROBE_FRAME: usize = 4 << 10;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlRequest {
    /// "Admit me": answered by an admission authority only.
    Join { token: String },
    /// "Tell me everything you know" (after connecting, to heal partitions
    /// and restarts).
    Sync,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlResponse {
    Joined { grant: Signed<SubnetGrant>, authority: Vec<u8>, state: State },
    Refused { reason: String },
    State(State),
}

/// Every record a node holds, plus whom it suspects.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub nodes: Vec<Signed<NodeRecord>>,
    pub instances: Vec<Signed<InstanceSet>>,
    /// (PeerId bytes, accused record version).
    pub accusations: Vec<(Vec<u8>, u64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeRequest {
    pub coordinate: Coordinate,
    /// The prober holds the target as suspect or dead: refute.
    pub suspected: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeResponse {
    pub coordinate: Coordinate,
    pub version: u64,
}

/// Length-prefixed, version-tagged postcard frames for request/response.
pub struct PostcardCodec<Req, Resp> {
    max: usize,
    types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Clone for PostcardCodec<Req, Resp> {
    fn clone(&self) -> Self {
        PostcardCodec { max: self.max, types: PhantomData }
    }
}

pub type ControlCodec = PostcardCodec<ControlRequest, ControlResponse>;
pub type ProbeCodec = PostcardCodec<ProbeRequest, ProbeResponse>;

impl ControlCodec {
    pub fn control() -> ControlCodec {
        PostcardCodec { max: MAX_CONTROL_FRAME, types: PhantomData }
    }
}

impl ProbeCodec {
    pub fn probe() -> ProbeCodec {
        PostcardCodec { max: MAX_PROBE_FRAME, types: PhantomData }
    }
}

async fn read_frame<T: for<'de> Deserialize<'de>>(io: &mut (impl AsyncRead + Unpin), max: usize) -> io::Result<T> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {len} bytes exceeds {max}")));
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    decode(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Encodes up front, so the future holds only bytes (not a borrowed value)
/// across its awaits.
fn frame<T: Serialize>(value: &T, max: usize) -> io::Result<Vec<u8>> {
    let body = encode(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if body.len() > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {} bytes exceeds {max}", body.len())));
    }
    let len = u32::try_from(body.len()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

async fn write_frame(io: &mut (impl AsyncWrite + Unpin), frame: io::Result<Vec<u8>>) -> io::Result<()> {
    io.write_all(&frame?).await?;
    io.close().await
}

impl<Req, Resp> Codec for PostcardCodec<Req, Resp>
where
    Req: Serialize + for<'de> Deserialize<'de> + Send + 'static,
    Resp: Serialize + for<'de> Deserialize<'de> + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req> {
        read_frame(io, self.max).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp> {
        read_frame(io, self.max).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Req,
    ) -> io::Result<()> {
        write_frame(io, frame(&request, self.max)).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Resp,
    ) -> io::Result<()> {
        write_frame(io, frame(&response, self.max)).await
    }
}
