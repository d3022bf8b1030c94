//! The control plane's request/response protocols and their framing: a
//! big-endian u32 length, then a version-tagged postcard body
//! ([`super::encode`]). Our own protocol names, never IPFS's.
//!
//! * `/grove/control/2`: [`ControlRequest::Join`] (answered by the
//!   admission authority only) and [`ControlRequest::Sync`] (answered to
//!   members only: the request carries the asker's own signed record, which
//!   proves it holds a grant), one [`Page`] of records at a time.
//! * `/grove/probe/2`: [`ProbeRequest::Ping`] (RTT, coordinates, failure
//!   detection) and [`ProbeRequest::PingReq`] (SWIM's indirect probe: "ping
//!   this member for me").
//!
//! Requests and responses have separate size limits, checked before the
//! body is read; every sequence inside is [`Bounded`].

use std::io;
use std::marker::PhantomData;

use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::Codec;
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};

use super::bounded::Bounded;
use super::records::{Delegation, InstanceSet, Leave, NodeRecord, Revocation, SubnetGrant};
use super::signed::Signed;
use super::{decode, encode};
use crate::control::admission::Refusal;
use crate::control::vivaldi::Coordinate;

pub const CONTROL_PROTOCOL: StreamProtocol = StreamProtocol::new("/grove/control/2");
pub const PROBE_PROTOCOL: StreamProtocol = StreamProtocol::new("/grove/probe/2");
pub const GOSSIP_PREFIX: &str = "/grove/gossip";
pub const IDENTIFY_VERSION: &str = "/grove/2";
pub const GOSSIP_TOPIC: &str = "grove/records/2";

/// Join and sync requests are small: a token and a name, or one node record.
pub const MAX_CONTROL_REQUEST: usize = 8 << 10;
/// One page of records; pages keep a node's memory per answer bounded
/// however large the mesh grows.
pub const MAX_CONTROL_RESPONSE: usize = 1 << 20;
/// What a page aims for, leaving room under [`MAX_CONTROL_RESPONSE`] for
/// the largest single instance set.
pub const PAGE_BUDGET: usize = 768 << 10;
/// Probes are tiny; anything bigger is hostile.
pub const MAX_PROBE_FRAME: usize = 1 << 10;
/// Records of each kind in one page.
pub const PAGE_ITEMS: usize = 256;
/// Longest join token accepted (generated ones have 32 characters).
pub const MAX_TOKEN: usize = 128;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlRequest {
    Join(JoinRequest),
    Sync(SyncRequest),
}

/// "Admit me": the token, and the name and tunnel key the grant will bind.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: String,
    pub name: String,
    pub wg_public_key: [u8; 32],
}

/// "Here is who I am; send me your records after `after`" (a PeerId in
/// bytes; `None` for the first page).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncRequest {
    pub me: Signed<NodeRecord>,
    pub after: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlResponse {
    /// The grant, and the authority's delegation when a delegate signed it.
    Joined { grant: Signed<SubnetGrant>, delegation: Option<Signed<Delegation>> },
    Refused(Refusal),
    Page(Page),
    /// The asker did not prove it is a member.
    NotMember,
}

/// Records of members in PeerId order, from after the request's cursor.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Page {
    pub nodes: Bounded<Signed<NodeRecord>, PAGE_ITEMS>,
    pub instances: Bounded<Signed<InstanceSet>, PAGE_ITEMS>,
    /// (PeerId bytes, accused record version): members the answering node
    /// holds suspect or dead, so a node cut off from gossip learns it is
    /// accused and refutes.
    pub accusations: Bounded<(Vec<u8>, u64), PAGE_ITEMS>,
    pub leaves: Bounded<Signed<Leave>, PAGE_ITEMS>,
    pub revocations: Bounded<Signed<Revocation>, PAGE_ITEMS>,
    /// Ask again with `after = next` for the rest.
    pub next: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ProbeRequest {
    /// `suspected`: the prober holds the target as suspect or dead (refute).
    Ping { coordinate: Coordinate, suspected: bool },
    /// Probe `target` (PeerId bytes) and tell me whether it answered.
    PingReq { target: Vec<u8> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ProbeResponse {
    Ack { coordinate: Coordinate, version: u64 },
    Indirect { reached: bool },
    NotMember,
}

/// Length-prefixed, version-tagged postcard frames for request/response.
pub struct PostcardCodec<Req, Resp> {
    max_request: usize,
    max_response: usize,
    types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Clone for PostcardCodec<Req, Resp> {
    fn clone(&self) -> Self {
        PostcardCodec { max_request: self.max_request, max_response: self.max_response, types: PhantomData }
    }
}

pub type ControlCodec = PostcardCodec<ControlRequest, ControlResponse>;
pub type ProbeCodec = PostcardCodec<ProbeRequest, ProbeResponse>;

impl ControlCodec {
    pub fn control() -> ControlCodec {
        PostcardCodec { max_request: MAX_CONTROL_REQUEST, max_response: MAX_CONTROL_RESPONSE, types: PhantomData }
    }
}

impl ProbeCodec {
    pub fn probe() -> ProbeCodec {
        PostcardCodec { max_request: MAX_PROBE_FRAME, max_response: MAX_PROBE_FRAME, types: PhantomData }
    }
}

/// Reads one frame; the length is checked before anything is allocated.
pub async fn read_frame<T: for<'de> Deserialize<'de>>(io: &mut (impl AsyncRead + Unpin), max: usize) -> io::Result<T> {
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
pub fn frame<T: Serialize>(value: &T, max: usize) -> io::Result<Vec<u8>> {
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
        read_frame(io, self.max_request).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp> {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Req,
    ) -> io::Result<()> {
        write_frame(io, frame(&request, self.max_request)).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Resp,
    ) -> io::Result<()> {
        write_frame(io, frame(&response, self.max_response)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::futures::executor::block_on;

    /// F2: a frame of millions of empty records (three bytes each on the
    /// wire) must be refused, not decoded into half a gigabyte.
    #[test]
    fn a_sync_bomb_is_refused_without_inflating() {
        let mut body = vec![super::super::WIRE_VERSION, 2]; // ControlResponse::Page
        let n: u32 = 300_000;
        let mut varint = Vec::new();
        let mut v = n;
        while v >= 0x80 {
            varint.push((v as u8) | 0x80);
            v >>= 7;
        }
        varint.push(v as u8);
        body.extend(&varint);
        body.extend(std::iter::repeat_n(0u8, 3 * n as usize));
        let mut wire = u32::try_from(body.len()).expect("len").to_be_bytes().to_vec();
        wire.extend(&body);
        let mut codec = ControlCodec::control();
        let read = block_on(codec.read_response(&CONTROL_PROTOCOL, &mut libp2p::futures::io::Cursor::new(&wire)));
        assert!(read.is_err(), "a 1 MiB frame of empty records decodes");
        // Within the size limit, the element bound refuses it.
        let small: Vec<u8> = body[..2].iter().copied().chain(varint.clone()).chain(std::iter::repeat_n(0u8, 3000)).collect();
        assert!(decode::<ControlResponse>(&small).is_err());
    }

    #[test]
    fn requests_are_limited_before_reading_them() {
        let mut codec = ControlCodec::control();
        let mut wire = u32::try_from(MAX_CONTROL_REQUEST + 1).expect("len").to_be_bytes().to_vec();
        wire.extend(std::iter::repeat_n(0u8, 16));
        let read = block_on(codec.read_request(&CONTROL_PROTOCOL, &mut libp2p::futures::io::Cursor::new(&wire)));
        let err = read.expect_err("oversized");
        assert!(err.to_string().contains("exceeds"), "{err}");
    }
}
