//! TUN → route → encrypt → UDP: the outbound thread.
//!
//! Each TUN read may yield a 64 KiB GSO super-packet that tun-rs splits into
//! MTU-sized packets; we keep reading until the TUN is drained or the batch
//! is full, encrypt every packet straight into one contiguous buffer, and
//! send runs of equal-sized datagrams to the same peer with one GSO sendmsg.

use std::io;

use crate::batch::SendBatch;
use crate::counters::DropReason;
use crate::device::Shared;
use crate::mtu;
use crate::packet;
use crate::peer::Encapsulated;
use crate::tun::IDEAL_BATCH_SIZE;

/// WireGuard data message overhead: 16-byte header + 16-byte tag (+ padding
/// to 16, covered by the slack in the packet buffers).
const DATA_OVERHEAD: usize = 32 + 16;
/// boringtun needs room for a handshake initiation even for tiny packets.
const MIN_OUT: usize = 148;

pub(crate) fn run(shared: &Shared) {
    let packet_len = mtu::max_packet(shared.tun.mtu());
    let mut scratch = vec![0u8; tun_rs::VIRTIO_NET_HDR_LEN + 65_535];
    let mut bufs = vec![vec![0u8; packet_len]; IDEAL_BATCH_SIZE];
    let mut sizes = vec![0usize; IDEAL_BATCH_SIZE];
    let mut batch = SendBatch::new(
        IDEAL_BATCH_SIZE * (packet_len + DATA_OVERHEAD),
        shared.udp.max_gso_segments(),
    );
    loop {
        let n = match shared.tun.recv_batch(&mut scratch, &mut bufs, &mut sizes) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Drained: send what we have before sleeping.
                flush(shared, &mut batch);
                if !shared.shutdown.wait(shared.tun.fd(), libc::POLLIN) {
                    return;
                }
                continue;
            }
            Err(e) => {
                if shared.shutdown.is_stopped() {
                    return;
                }
                tracing::debug!(error = %e, "TUN read failed");
                shared.receiver.drops.add(DropReason::InvalidInner);
                continue;
            }
        };
        let table = shared.peers();
        for (buf, size) in bufs.iter().zip(&sizes).take(n) {
            let packet = &buf[..*size];
            let Some(dst) = packet::destination(packet) else {
                shared.receiver.drops.add(DropReason::InvalidInner);
                continue;
            };
            let Some(peer) = table.route(dst) else {
                // The kernel's own link-local multicast on the TUN (IPv6
                // router solicitations, MLD) has no peer by design; only
                // unicast without a route is worth a counter.
                if !is_link_local_multicast(dst) {
                    shared.receiver.drops.add(DropReason::NoRoute);
                }
                continue;
            };
            let out = batch.spare((packet.len() + DATA_OVERHEAD).max(MIN_OUT));
            match peer.encapsulate(packet, out) {
                Encapsulated::Send { endpoint, len } => {
                    batch.commit(endpoint, len);
                    peer.counters.tx.add(1, packet.len() as u64);
                }
                Encapsulated::Queued => {}
                Encapsulated::Dropped(reason) => peer.counters.drops.add(reason),
            }
        }
        if batch.len() >= IDEAL_BATCH_SIZE {
            flush(shared, &mut batch);
        }
    }
}

fn is_link_local_multicast(dst: std::net::IpAddr) -> bool {
    match dst {
        std::net::IpAddr::V6(a) => a.segments()[0] == 0xff02,
        std::net::IpAddr::V4(a) => a.octets()[..3] == [224, 0, 0],
    }
}

/// Sends every run of the batch and empties it.
pub(crate) fn flush(shared: &Shared, batch: &mut SendBatch) {
    for run in batch.runs() {
        if let Err(e) = shared.udp.send(run.to, run.contents, run.segment, &shared.shutdown) {
            tracing::debug!(to = %run.to, error = %e, "UDP send failed");
            for _ in 0..run.datagrams {
                shared.receiver.drops.add(DropReason::SendFailed);
            }
        }
    }
    batch.clear();
}
