//! Entry points shared by the fuzz targets (overlay/fuzz) and the corpus regression test.
//!
//! [`datagram`] builds two in-memory nodes, A and B, with a real Noise
//! handshake between them, and lets the fuzz input choose the datagrams that
//! B's [`Receiver::receive`] sees. Besides "never panics" it checks, after
//! every datagram:
//!
//! * only genuine datagrams that A encrypted reach B's TUN, each at most once
//!   (no forgery, no replay), and with the plaintext A sent;
//! * B sends only to the address a datagram came from or to A's known
//!   endpoint (no reflection), and never more bytes than it received (no
//!   amplification; WireGuard whitepaper section 5.3);
//!
//! and at the end, that the session still carries a fresh packet both ways:
//! hostile input must not break an established session.
//!
//! Everything but the handshake's ephemeral keys (boringtun draws them from
//! the OS) is fixed, so an input takes the same path on every run.
//! `GROVE_FUZZ_TRACE=1` prints each datagram and what B did with it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Instant;

use crate::peer::Encapsulated;
use crate::peer_table::PeerTable;
use crate::receive::{Received, Receiver};
use crate::{PeerConfig, PrivateKey, PublicKey, DEFAULT_KEEPALIVE_SECS};

/// B's decryption buffer as the inbound thread sizes it for a 1500-byte MTU
/// (`inbound.rs`: `mtu.max(1500) + 64` bytes after the virtio-net header).
const OUT_LEN: usize = 1500 + 64;
/// Datagrams in one sequence-mode input.
const MAX_STEPS: usize = 16;
/// Byte flips applied to one captured datagram.
const MAX_FLIPS: usize = 64;
/// Packets A may send past B (lost on the way) in one input; the replay
/// window is 1024 packets wide, so this slides it past old captures.
const MAX_LOST: usize = 4096;

const A_KEY: [u8; 32] = [0xa1; 32];
const B_KEY: [u8; 32] = [0xb2; 32];
const STRANGER_KEY: [u8; 32] = [0x5c; 32];
const A_INNER: [u8; 4] = [10, 18, 0, 1];
const A_INNER6: [u8; 16] = [0xfd, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B_INNER: [u8; 4] = [10, 18, 0, 2];
const B_INNER6: [u8; 16] = [0xfd, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// Where fuzzed datagrams claim to come from: A's configured endpoint, a
/// roaming IPv4 and IPv6 address, and an address nobody should use.
fn source(selector: u8) -> SocketAddr {
    match selector % 4 {
        0 => a_addr(),
        1 => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 7, 7)), 40000),
        2 => SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)), 50103),
        _ => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
    }
}

fn a_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)), 50103)
}

fn b_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2)), 50103)
}

/// Runs one fuzz input against B's receive path; panics on a broken invariant.
///
/// The first byte picks the mode (low two bits) and the source address of
/// the datagram (next two bits):
///
/// * `0` raw: the rest is the datagram;
/// * `1` header: a message type and B's real receiver index, then the rest;
/// * `2` mutate: a captured datagram with truncation/extension and byte flips;
/// * `3` sequence: up to [`MAX_STEPS`] datagrams (replays, mutants, raw
///   bytes, fresh and lost packets from A), each with its own source.
pub fn datagram(input: &[u8]) {
    let mut world = World::new();
    let mut input = Input(input);
    let first = input.byte();
    let from = source(first >> 2);
    match first & 3 {
        0 => world.feed(from, input.0),
        1 => {
            let d = world.header_datagram(&mut input);
            world.feed(from, &d);
        }
        2 => {
            let d = world.mutated(&mut input);
            world.feed(from, &d);
        }
        _ => world.sequence(&mut input),
    }
    world.check_session_survives();
}

/// The unread part of a fuzz input. Reading past the end yields zeros, so
/// every input is valid.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Datagrams a node sent, each with its destination.
type Replies = Vec<(Vec<u8>, SocketAddr)>;

/// One side of the in-memory mesh.
struct Node {
    key: PrivateKey,
    receiver: Receiver,
    table: PeerTable,
    addr: SocketAddr,
}

impl Node {
    fn new(key: [u8; 32], addr: SocketAddr) -> Self {
        let key = PrivateKey::from_bytes(key);
        Node {
            receiver: Receiver::new(key.clone()),
            key,
            table: PeerTable::default(),
            addr,
        }
    }

    fn connect(&mut self, peer: PeerConfig) {
        let mut next_id = 0;
        self.table = PeerTable::build(
            &self.key,
            &[peer],
            DEFAULT_KEEPALIVE_SECS,
            &PeerTable::default(),
            &mut next_id,
            Instant::now(),
        );
    }

    /// Hands `datagram` to this node's receiver; returns what it decided,
    /// the decrypted packet and the replies with their destinations.
    fn deliver(&self, from: SocketAddr, datagram: &[u8], now: Instant) -> (Option<Vec<u8>>, Replies) {
        let mut out = vec![0u8; OUT_LEN];
        let mut replies = Vec::new();
        let r = self
            .receiver
            .receive(&self.table, from, datagram, &mut out, now, |p, to| {
                replies.push((p.to_vec(), to))
            });
        let packet = match r {
            Received::ToTun { len } => Some(out.get(..len).expect("ToTun length within the buffer").to_vec()),
            Received::Nothing => None,
        };
        (packet, replies)
    }

    /// Encrypts `packet` for this node's only peer on the established session.
    fn encrypt(&self, peer: &PublicKey, packet: &[u8]) -> Vec<u8> {
        let peer = self.table.by_key(peer).expect("harness peer");
        let mut buf = vec![0u8; packet.len() + 148];
        match peer.encapsulate(packet, &mut buf) {
            Encapsulated::Send { len, .. } => {
                buf.truncate(len);
                buf
            }
            other => panic!("established session refused to encrypt: {other:?}"),
        }
    }
}

/// A datagram recorded on the wire, and what B's TUN must see if it is
/// delivered (`None`: it must never reach the TUN).
struct Capture {
    bytes: Vec<u8>,
    plaintext: Option<Vec<u8>>,
    delivered: bool,
}

struct World {
    a: Node,
    b: Node,
    now: Instant,
    /// Captured datagrams the fuzz input may replay or mutate; sequence mode
    /// appends the packets A sends while it runs.
    pool: Vec<Capture>,
    /// B's receiver index, from bytes 4..8 of a real data datagram.
    b_index: [u8; 4],
    lost: usize,
    fresh: u8,
}

impl World {
    /// A and B with an established session, plus captured datagrams: A's
    /// initiation, keepalive and data packets (some already seen by B), B's
    /// response, and an initiation from a key B does not know.
    fn new() -> Self {
        let now = Instant::now();
        let mut a = Node::new(A_KEY, a_addr());
        let mut b = Node::new(B_KEY, b_addr());
        let (a_pub, b_pub) = (a.key.public_key(), b.key.public_key());
        a.connect(PeerConfig {
            public_key: b_pub,
            endpoints: vec![b.addr],
            allowed_ips: vec![
                "10.18.0.2/32".parse().expect("net"),
                "fd18::2/128".parse().expect("net"),
            ],
        });
        b.connect(PeerConfig {
            public_key: a_pub,
            endpoints: vec![a.addr],
            allowed_ips: vec![
                "10.18.0.1/32".parse().expect("net"),
                "fd18::1/128".parse().expect("net"),
            ],
        });

        // The handshake, as in receive.rs's tests: the first packet makes A
        // initiate; B responds; A confirms with a keepalive and releases the
        // packet it queued.
        let first = ipv4(A_INNER, B_INNER, b"hello grove");
        let init = a.encrypt(&b_pub, &first);
        assert_eq!(init.first(), Some(&1), "first packet must trigger an initiation");
        let (none, mut response) = b.deliver(a.addr, &init, now);
        assert!(none.is_none() && response.len() == 1, "B answers the initiation");
        let response = response.remove(0).0;
        let (none, queued) = a.deliver(b.addr, &response, now);
        assert!(none.is_none() && queued.len() == 2, "keepalive + queued packet");
        let keepalive = queued[0].0.clone();
        let data = queued[1].0.clone();
        assert!(b.deliver(a.addr, &keepalive, now).0.is_none());
        let b_index: [u8; 4] = data.get(4..8).and_then(|s| s.try_into().ok()).expect("receiver index");

        let six = ipv6(A_INNER6, B_INNER6, b"hello six");
        let spoofed = ipv4([10, 18, 0, 99], B_INNER, b"spoofed source");
        let not_ip = b"\x00 not an IP packet".to_vec();
        let pool = vec![
            Capture::deliverable(data, first),
            Capture::deliverable(a.encrypt(&b_pub, &six), six),
            Capture::refused(a.encrypt(&b_pub, &spoofed)),
            Capture::refused(a.encrypt(&b_pub, &not_ip)),
            Capture::refused(keepalive),
            Capture::refused(init),
            Capture::refused(response),
            Capture::refused(stranger_init(&b_pub).to_vec()),
        ];
        World {
            a,
            b,
            now,
            pool,
            b_index,
            lost: 0,
            fresh: 0,
        }
    }

    /// Delivers one datagram to B and checks what came of it.
    fn feed(&mut self, from: SocketAddr, datagram: &[u8]) {
        let endpoint = self.b.table.by_key(&self.a.key.public_key()).and_then(|p| p.endpoint());
        let (packet, replies) = self.b.deliver(from, datagram, self.now);
        if trace() {
            let kind = datagram.first().copied().unwrap_or(0);
            let replies: Vec<(u8, usize)> = replies
                .iter()
                .map(|(r, _)| (r.first().copied().unwrap_or(0), r.len()))
                .collect();
            let outcome = if packet.is_some() { "to TUN" } else { "nothing" };
            eprintln!(
                "datagram type {kind} len {} from {from}: {outcome}, replies (type, len) {replies:?}, drops {:?} / {:?}\n  {:02x?}",
                datagram.len(),
                self.b.receiver.drops.snapshot(),
                self.b.table.by_key(&self.a.key.public_key()).map(|p| p.counters.drops.snapshot()),
                datagram,
            );
        }
        for (reply, to) in &replies {
            assert!(
                *to == from || Some(*to) == endpoint,
                "B sent to {to}, neither the datagram's source {from} nor A's endpoint {endpoint:?} (reflection)"
            );
            // B heard from A moments ago, so even a forged data message for
            // an unknown session must not make it offer a new handshake.
            assert!(
                reply.len() <= datagram.len(),
                "B answered {} bytes with {} (amplification)",
                datagram.len(),
                reply.len()
            );
        }
        let Some(packet) = packet else { return };
        let Some(capture) = self
            .pool
            .iter_mut()
            .find(|c| c.plaintext.is_some() && c.bytes == datagram)
        else {
            panic!("a datagram A never sent reached B's TUN: {datagram:02x?} -> {packet:02x?}");
        };
        assert!(
            !capture.delivered,
            "a replayed datagram reached B's TUN twice: {datagram:02x?}"
        );
        assert_eq!(
            capture.plaintext.as_deref(),
            Some(&packet[..]),
            "decrypted packet differs from what A sent"
        );
        capture.delivered = true;
    }

    /// A message type and B's receiver index (sender index for an
    /// initiation), optionally padded to that message's exact size.
    fn header_datagram(&self, input: &mut Input) -> Vec<u8> {
        let control = input.byte();
        let msg_type = (control & 3) + 1;
        let exact_size = control & 4 != 0;
        let mut index = self.b_index;
        if control & 0x18 == 0x18 {
            // A near miss: same peer, another session slot.
            index[0] ^= control >> 5;
        }
        let mut d = vec![msg_type, 0, 0, 0];
        if msg_type == 2 {
            // A response carries the sender's index first, then ours.
            let mut sender = [0u8; 4];
            let given = input.take(4);
            sender[..given.len()].copy_from_slice(given);
            d.extend_from_slice(&sender);
        }
        d.extend_from_slice(&index);
        d.extend_from_slice(input.0);
        if exact_size {
            match msg_type {
                1 => d.resize(148, 0),
                2 => d.resize(92, 0),
                3 => d.resize(64, 0),
                _ => d.resize(d.len().max(32), 0),
            }
        }
        d
    }

    /// A captured datagram, shortened or lengthened, with byte flips:
    /// `[which, length change, (pos_lo, pos_hi, xor)*]`.
    fn mutated(&self, input: &mut Input) -> Vec<u8> {
        let which = usize::from(input.byte()) % self.pool.len();
        let mut d = self.pool.get(which).map(|c| c.bytes.clone()).unwrap_or_default();
        match input.byte() {
            0 => {}
            keep @ 1..=127 => d.truncate(d.len() * usize::from(keep) / 128),
            grow => d.resize(d.len() + usize::from(grow - 127), 0),
        }
        for _ in 0..MAX_FLIPS {
            if input.is_empty() {
                break;
            }
            flip(&mut d, input);
        }
        d
    }

    /// Up to [`MAX_STEPS`] datagrams. Each step starts with a byte whose top
    /// two bits pick the source and whose low six bits pick what is sent:
    ///
    /// * `0` raw bytes: `[step, n, n bytes]`;
    /// * `1` a header datagram as in mode 1: `[step, n, n bytes]`;
    /// * `2` a fresh packet from A;
    /// * `3` a fresh packet from A, sent after `k * 128` packets that B never
    ///   sees: `[step, k]`;
    /// * `4..` captured datagram `k - 4` (A's data packets first, then the
    ///   refused ones, then those sent during this sequence), replayed as is
    ///   or with one flip: `[step, pos_lo, pos_hi, xor]`.
    fn sequence(&mut self, input: &mut Input) {
        for _ in 0..MAX_STEPS {
            if input.is_empty() {
                return;
            }
            let step = input.byte();
            let from = source(step >> 6);
            let d = match step & 0x3f {
                0 => {
                    let n = input.byte();
                    input.take(usize::from(n)).to_vec()
                }
                1 => {
                    let n = input.byte();
                    self.header_datagram(&mut Input(input.take(usize::from(n))))
                }
                2 => self.fresh_from_a(),
                3 => {
                    let lost = usize::from(input.byte() % 16) * 128;
                    self.lose_packets(lost);
                    self.fresh_from_a()
                }
                k => {
                    let which = usize::from(k - 4) % self.pool.len();
                    let mut d = self.pool.get(which).map(|c| c.bytes.clone()).unwrap_or_default();
                    flip(&mut d, input);
                    d
                }
            };
            self.feed(from, &d);
        }
    }

    /// A new IPv4 packet from A, recorded as deliverable.
    fn fresh_from_a(&mut self) -> Vec<u8> {
        self.fresh = self.fresh.wrapping_add(1);
        let packet = ipv4(A_INNER, B_INNER, &[self.fresh; 8]);
        let d = self.a.encrypt(&self.b.key.public_key(), &packet);
        self.pool.push(Capture::deliverable(d.clone(), packet));
        d
    }

    /// A sends `n` packets that are lost on the way, moving its counter ahead.
    fn lose_packets(&mut self, n: usize) {
        let n = n.min(MAX_LOST - self.lost);
        self.lost += n;
        let b_pub = self.b.key.public_key();
        for _ in 0..n {
            self.a.encrypt(&b_pub, &[]);
        }
    }

    /// The robustness property: whatever B was fed, a fresh packet still
    /// gets through in both directions.
    fn check_session_survives(&mut self) {
        let (a_pub, b_pub) = (self.a.key.public_key(), self.b.key.public_key());
        let to_b = ipv4(A_INNER, B_INNER, b"still alive");
        let d = self.a.encrypt(&b_pub, &to_b);
        let (packet, _) = self.b.deliver(self.a.addr, &d, self.now);
        let drops = |n: &Node, k: &PublicKey| n.table.by_key(k).map(|p| p.counters.drops.snapshot());
        assert_eq!(
            packet.as_deref(),
            Some(&to_b[..]),
            "the session A->B broke: B's drops {:?}, per peer {:?}",
            self.b.receiver.drops.snapshot(),
            drops(&self.b, &a_pub)
        );
        let to_a = ipv4(B_INNER, A_INNER, b"alive too");
        let d = self.b.encrypt(&a_pub, &to_a);
        let (packet, _) = self.a.deliver(self.b.addr, &d, self.now);
        assert_eq!(
            packet.as_deref(),
            Some(&to_a[..]),
            "the session B->A broke: A's drops {:?}, per peer {:?}",
            self.a.receiver.drops.snapshot(),
            drops(&self.a, &b_pub)
        );
    }
}

impl Capture {
    fn deliverable(bytes: Vec<u8>, plaintext: Vec<u8>) -> Self {
        Capture {
            bytes,
            plaintext: Some(plaintext),
            delivered: false,
        }
    }

    fn refused(bytes: Vec<u8>) -> Self {
        Capture {
            bytes,
            plaintext: None,
            delivered: false,
        }
    }
}

/// Whether `GROVE_FUZZ_TRACE` is set: then every datagram and its outcome is
/// printed, to read what a crashing input does.
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("GROVE_FUZZ_TRACE").is_some())
}

/// XORs one byte of `d`, reading `[pos_lo, pos_hi, xor]`.
fn flip(d: &mut [u8], input: &mut Input) {
    let pos = usize::from(u16::from_le_bytes([input.byte(), input.byte()]));
    let xor = input.byte();
    if let Some(i) = pos.checked_rem(d.len()) {
        d[i] ^= xor;
    }
}

/// A valid initiation to B from a key B does not know. Made once: it does
/// not depend on B's session state, only on B's (fixed) public key.
fn stranger_init(b_pub: &PublicKey) -> &'static [u8] {
    static INIT: OnceLock<Vec<u8>> = OnceLock::new();
    INIT.get_or_init(|| {
        let mut stranger = Node::new(
            STRANGER_KEY,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 9, 2)), 50103),
        );
        stranger.connect(PeerConfig {
            public_key: *b_pub,
            endpoints: vec![b_addr()],
            allowed_ips: vec!["10.18.0.2/32".parse().expect("net")],
        });
        let init = stranger.encrypt(b_pub, &ipv4([10, 18, 0, 9], B_INNER, b"x"));
        assert_eq!(init.first(), Some(&1), "a stranger's first packet is an initiation");
        init
    })
}

/// A minimal IPv4/UDP packet (also used by the receive tests).
pub(crate) fn ipv4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    let total = (20 + payload.len()) as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

fn ipv6(src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    p[8..24].copy_from_slice(&src);
    p[24..40].copy_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}
