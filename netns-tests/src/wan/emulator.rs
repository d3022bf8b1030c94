//! The running emulator: a reader thread that classifies packets from the
//! device into the deadline queue, a writer thread that sleeps precisely
//! until the next deadline and writes due packets back, and a control
//! socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use super::packet;
use super::policy::{PairCounters, PolicyTable, Verdict};
use super::protocol::{format_reply, WanCommand};
use super::queue::DelayQueue;
use crate::{Error, Result};

/// Largest packet wanem handles (TUN MTU is set well below).
const MAX_PACKET: usize = 65_536;

/// A device packets are read from and written back to: the TUN in
/// production, anything in tests.
pub trait PacketDevice: Send + Sync + 'static {
    /// Reads one packet.
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Writes one packet.
    fn send(&self, buf: &[u8]) -> std::io::Result<usize>;
}

impl PacketDevice for tun_rs::SyncDevice {
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        tun_rs::SyncDevice::recv(self, buf)
    }
    fn send(&self, buf: &[u8]) -> std::io::Result<usize> {
        tun_rs::SyncDevice::send(self, buf)
    }
}

/// What `wanem` is started with.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Control socket path (replaced if it exists).
    pub control: PathBuf,
    /// Delay for pairs without their own.
    pub default_delay: Duration,
}

/// The reply to `stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    /// Packets waiting in the queue now.
    pub queued: usize,
    /// Packets that were not IPv4/IPv6.
    pub unparsed: u64,
    /// Counters per `"src>dst"`.
    pub pairs: std::collections::BTreeMap<String, PairCounters>,
}

struct Shared {
    policy: Mutex<PolicyTable>,
    queue: Mutex<DelayQueue>,
    wake: Condvar,
}

/// Runs the emulator on `device` until the process ends. Returns only on a
/// setup error or when a thread fails.
pub fn run(config: EmulatorConfig, device: Arc<dyn PacketDevice>) -> Result<()> {
    let _ = std::fs::remove_file(&config.control);
    let listener = UnixListener::bind(&config.control)
        .map_err(|e| Error::io(format!("bind {}", config.control.display()), e))?;
    let shared = Arc::new(Shared {
        policy: Mutex::new(PolicyTable::new(config.default_delay)),
        queue: Mutex::new(DelayQueue::new()),
        wake: Condvar::new(),
    });

    let writer = {
        let (shared, device) = (shared.clone(), device.clone());
        std::thread::Builder::new()
            .name("wanem-writer".into())
            .spawn(move || write_loop(&shared, &*device))
            .map_err(|e| Error::io("spawn writer thread", e))?
    };
    let reader = {
        let (shared, device) = (shared.clone(), device.clone());
        std::thread::Builder::new()
            .name("wanem-reader".into())
            .spawn(move || read_loop(&shared, &*device))
            .map_err(|e| Error::io("spawn reader thread", e))?
    };
    tracing::info!(control = %config.control.display(), default_delay = ?config.default_delay, "wanem running");

    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("wanem-control".into())
                    .spawn(move || serve_control(&shared, stream));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot spawn control thread");
                }
            }
            Err(e) => tracing::warn!(error = %e, "control accept failed"),
        }
        if reader.is_finished() || writer.is_finished() {
            break;
        }
    }
    Err(Error::Wan("packet thread stopped".into()))
}

fn read_loop(shared: &Shared, device: &dyn PacketDevice) {
    let mut buf = vec![0u8; MAX_PACKET];
    let mut rng = XorShift::seeded();
    loop {
        let n = match device.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!(error = %e, "tun read failed");
                return;
            }
        };
        let packet = &buf[..n];
        let Some((src, dst)) = packet::addresses(packet) else {
            shared.policy.lock().count_unparsed();
            continue;
        };
        let verdict = shared.policy.lock().decide(src, dst, rng.next_f64());
        match verdict {
            Verdict::Forward { delay } => {
                let now = Instant::now();
                let mut queue = shared.queue.lock();
                let was_next = queue.next_deadline();
                let deadline = queue.push((src, dst), now, delay, packet.to_vec());
                drop(queue);
                if was_next.is_none_or(|next| deadline < next) {
                    shared.wake.notify_one();
                }
            }
            Verdict::Cut | Verdict::Lost => {
                tracing::trace!(%src, %dst, ?verdict, "dropped");
            }
        }
    }
}

fn write_loop(shared: &Shared, device: &dyn PacketDevice) {
    set_precise_timers();
    let mut due = Vec::new();
    let mut last_prune = Instant::now();
    loop {
        {
            let mut queue = shared.queue.lock();
            loop {
                let now = Instant::now();
                while let Some(packet) = queue.pop_due(now) {
                    due.push(packet);
                }
                if !due.is_empty() {
                    break;
                }
                match queue.next_deadline() {
                    Some(deadline) => {
                        shared.wake.wait_until(&mut queue, deadline);
                    }
                    None => shared.wake.wait(&mut queue),
                }
            }
            if last_prune.elapsed() > Duration::from_secs(10) {
                queue.prune(Instant::now());
                last_prune = Instant::now();
            }
        }
        for packet in due.drain(..) {
            if let Err(e) = device.send(&packet) {
                tracing::debug!(error = %e, len = packet.len(), "tun write failed");
            }
        }
    }
}

/// Asks the kernel for 1 ns timer slack on this thread, so deadline sleeps
/// wake within microseconds instead of the default 50 µs slack.
fn set_precise_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument only.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("PR_SET_TIMERSLACK failed");
    }
}

fn serve_control(shared: &Shared, stream: UnixStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let reply = handle(shared, &line);
        match &reply {
            Ok(_) => tracing::info!(command = %line.trim(), "control"),
            Err(reason) => tracing::warn!(command = %line.trim(), %reason, "control rejected"),
        }
        if writeln!(writer, "{}", format_reply(&reply)).is_err() {
            return;
        }
    }
}

fn handle(shared: &Shared, line: &str) -> std::result::Result<Option<String>, String> {
    let command = WanCommand::parse(line)?;
    if command == WanCommand::Stats {
        let (pairs, unparsed) = shared.policy.lock().counters();
        let report = StatsReport {
            queued: shared.queue.lock().len(),
            unparsed,
            pairs,
        };
        return serde_json::to_string(&report).map(Some).map_err(|e| e.to_string());
    }
    shared.policy.lock().apply(&command);
    Ok(None)
}

/// xorshift64*: plenty for deciding packet loss, no dependency needed.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        XorShift((t ^ u64::from(std::process::id()).rotate_left(32)) | 1)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Receiver, Sender};

    /// A device fed and drained through channels.
    struct MemoryDevice {
        inbound: parking_lot::Mutex<Receiver<Vec<u8>>>,
        outbound: Sender<(Instant, Vec<u8>)>,
    }

    impl PacketDevice for MemoryDevice {
        fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
            let packet = self
                .inbound
                .lock()
                .recv()
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed"))?;
            buf[..packet.len()].copy_from_slice(&packet);
            Ok(packet.len())
        }
        fn send(&self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.outbound.send((Instant::now(), buf.to_vec()));
            Ok(buf.len())
        }
    }

    fn v4(src: [u8; 4], dst: [u8; 4], tag: u8) -> Vec<u8> {
        let mut p = vec![0u8; 21];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20] = tag;
        p
    }

    #[test]
    fn delays_per_pair_and_obeys_control() {
        let (to_dev, inbound) = channel();
        let (outbound, from_dev) = channel();
        let device = Arc::new(MemoryDevice { inbound: parking_lot::Mutex::new(inbound), outbound });
        let dir = crate::ScratchDir::new("emutest").expect("scratch");
        let control = dir.join("wan.sock");
        let config = EmulatorConfig { control: control.clone(), default_delay: Duration::ZERO };
        std::thread::spawn(move || run(config, device));
        let client = crate::WanControl::new(&control);
        crate::wait_until(Duration::from_secs(5), || client.stats().is_ok()).expect("control up");

        let (a, b, c) = ([198, 18, 0, 2], [198, 18, 1, 2], [198, 18, 2, 2]);
        client
            .send(&WanCommand::Delay { src: a.into(), dst: b.into(), delay: Duration::from_millis(30) })
            .expect("delay");
        client.send(&WanCommand::Cut { a: a.into(), b: c.into() }).expect("cut");

        let start = Instant::now();
        to_dev.send(v4(a, b, 1)).expect("send");
        to_dev.send(v4(a, b, 2)).expect("send");
        to_dev.send(v4(a, c, 3)).expect("send");
        to_dev.send(v4(b, a, 4)).expect("send");
        let mut got = Vec::new();
        for _ in 0..3 {
            let (at, p) = from_dev.recv_timeout(Duration::from_secs(2)).expect("packet out");
            got.push((p[20], at.duration_since(start)));
        }
        let order: Vec<u8> = got.iter().map(|g| g.0).collect();
        assert_eq!(order, vec![4, 1, 2], "undelayed first, then a→b in FIFO order; cut dropped");
        assert!(got[1].1 >= Duration::from_millis(30), "a→b held ≥ 30 ms: {got:?}");
        assert!(got[1].1 < Duration::from_millis(80), "a→b not held much longer: {got:?}");
        assert!(from_dev.recv_timeout(Duration::from_millis(100)).is_err(), "cut packet dropped");

        let stats = client.stats().expect("stats");
        assert_eq!(stats.pairs["198.18.0.2>198.18.2.2"].cut, 1);
        assert_eq!(stats.pairs["198.18.0.2>198.18.1.2"].forwarded, 2);
        assert!(client.send(&WanCommand::Default { delay: Duration::ZERO }).is_ok());
        drop(dir);
    }

    #[test]
    fn xorshift_is_roughly_uniform() {
        let mut rng = XorShift(42);
        let n = 100_000;
        let below_half = (0..n).filter(|_| rng.next_f64() < 0.5).count();
        assert!((below_half as f64 / n as f64 - 0.5).abs() < 0.01);
    }
}
