//! UDP → find peer → decrypt → check source → TUN: the inbound thread.
//!
//! One `recvmmsg` fills several 64 KiB buffers, each possibly holding many
//! GRO-coalesced datagrams of equal stride. Decrypted packets collect in
//! TUN buffers that tun-rs coalesces back into large TCP segments (GRO) on
//! write, so the kernel sees few, big packets.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::time::Instant;

use quinn_udp::RecvMeta;
use tun_rs::{GROTable, VIRTIO_NET_HDR_LEN};

use crate::batch::SendBatch;
use crate::counters::DropReason;
use crate::device::Shared;
use crate::mtu;
use crate::outbound::flush;
use crate::peer_table::PeerTable;
use crate::receive::Received;
use crate::tun::IDEAL_BATCH_SIZE;

const RECV_BATCH: usize = 8;
const RECV_BUF: usize = 65_535;
/// Replies held before they are sent. Flushing also happens after every
/// receive batch, so under a flood that keeps the socket busy, replies
/// (handshake responses to real peers among them) still leave promptly and
/// their buffer stays small.
const MAX_REPLIES: usize = 64;

/// Per-thread buffers, allocated once.
struct Buffers {
    /// Decrypted packets at offset VIRTIO_NET_HDR_LEN, ready for the TUN.
    tun: Vec<Vec<u8>>,
    tun_used: usize,
    tun_len: usize,
    /// Handshake replies and packets released by a completed handshake.
    replies: SendBatch,
    gro: GROTable,
}

pub(crate) fn run(shared: &Shared) {
    let mut rx: Box<[[u8; RECV_BUF]; RECV_BATCH]> = match vec![[0u8; RECV_BUF]; RECV_BATCH]
        .into_boxed_slice()
        .try_into()
    {
        Ok(b) => b,
        Err(_) => return,
    };
    let mut meta = [RecvMeta::default(); RECV_BATCH];
    let tun_len = VIRTIO_NET_HDR_LEN + mtu::max_packet(shared.tun.mtu());
    let mut b = Buffers {
        // tun-rs coalesces a flow into its first buffer only if that buffer
        // already has the capacity (it never reallocates), so every buffer
        // can grow to a 64 KiB super-packet. Untouched capacity costs no RSS.
        tun: (0..IDEAL_BATCH_SIZE)
            .map(|_| {
                let mut buf = Vec::with_capacity(2 * VIRTIO_NET_HDR_LEN + 65_535);
                buf.resize(tun_len, 0);
                buf
            })
            .collect(),
        tun_used: 0,
        tun_len,
        replies: SendBatch::new(4096, 1),
        gro: GROTable::default(),
    };
    loop {
        let n = {
            let mut iovs = rx.each_mut().map(|buf| IoSliceMut::new(&mut buf[..]));
            match shared.udp.recv(&mut iovs, &mut meta) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    flush_tun(shared, &mut b);
                    flush(shared, &mut b.replies);
                    if !shared.shutdown.wait(shared.udp.fd(), libc::POLLIN) {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    if shared.shutdown.is_stopped() {
                        return;
                    }
                    // ICMP errors surface here on some kernels; not fatal.
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            }
        };
        let table = shared.peers();
        let now = Instant::now();
        for (buf, m) in rx.iter().zip(&meta).take(n) {
            let data = &buf[..m.len.min(RECV_BUF)];
            let stride = if m.stride == 0 { data.len().max(1) } else { m.stride };
            for datagram in data.chunks(stride) {
                if b.tun_used == b.tun.len() {
                    flush_tun(shared, &mut b);
                }
                handle_datagram(shared, &table, m.addr, datagram, &mut b, now);
                // One datagram adds at most a reply and the packets a
                // completed handshake releases (boringtun queues 256).
                if b.replies.len() >= MAX_REPLIES {
                    flush(shared, &mut b.replies);
                }
            }
        }
        flush(shared, &mut b.replies);
    }
}

/// Handles one datagram; a decrypted packet is left in the next TUN buffer.
fn handle_datagram(
    shared: &Shared,
    table: &PeerTable,
    from: SocketAddr,
    datagram: &[u8],
    b: &mut Buffers,
    now: Instant,
) {
    let out = &mut b.tun[b.tun_used];
    let replies = &mut b.replies;
    let received = shared.receiver.receive(
        table,
        from,
        datagram,
        &mut out[VIRTIO_NET_HDR_LEN..],
        now,
        |p, to| replies.push(to, p),
    );
    if let Received::ToTun { len } = received {
        out.truncate(VIRTIO_NET_HDR_LEN + len);
        b.tun_used += 1;
    }
}

/// Writes the collected packets to the TUN and readies the buffers again.
fn flush_tun(shared: &Shared, b: &mut Buffers) {
    if b.tun_used == 0 {
        return;
    }
    if let Err(e) = shared.tun.send_batch(&mut b.gro, &mut b.tun[..b.tun_used]) {
        tracing::debug!(error = %e, "TUN write failed");
        shared.receiver.drops.add(DropReason::TunWriteFailed);
    }
    for buf in &mut b.tun[..b.tun_used] {
        buf.resize(b.tun_len, 0);
    }
    b.tun_used = 0;
}
