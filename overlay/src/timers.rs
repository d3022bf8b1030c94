//! The timer thread: drives every session's timers (handshake retries,
//! rekeying, keepalives, expiry) and resets the handshake rate limiter.

use std::time::{Duration, Instant};

use crate::batch::SendBatch;
use crate::device::Shared;
use crate::mtu;
use crate::outbound::flush;

/// boringtun's timers have 100 ms-ish granularity expectations (REKEY_TIMEOUT
/// is 5 s, keepalive 10 s); ticking faster buys nothing.
const TICK: Duration = Duration::from_millis(100);
const RATE_LIMIT_WINDOW: Duration = Duration::from_secs(1);

pub(crate) fn run(shared: &Shared) {
    // Queued packets are flushed into `out` once their handshake is done;
    // boringtun panics if one does not fit, so size it from the MTU.
    let mut out = vec![0u8; mtu::session_buffer_len(shared.tun.mtu())];
    let mut batch = SendBatch::new(4096, 1);
    let mut window_start = Instant::now();
    while shared.shutdown.sleep(TICK) {
        let now = Instant::now();
        let table = shared.peers();
        for peer in table.peers() {
            peer.update_timers(&mut out, now, |p, to| batch.push(to, p));
        }
        flush(shared, &mut batch);
        if now.duration_since(window_start) >= RATE_LIMIT_WINDOW {
            shared.receiver.reset_rate_limit();
            window_start = now;
        }
    }
}
