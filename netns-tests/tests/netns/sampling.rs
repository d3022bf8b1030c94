//! Watching a mesh while an attack runs: `closest` and membership sampled
//! on every node in the background ([`Sampler`]), and data over the overlay
//! without `ping` (a UDP echo).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netns_tests::dynamic::{ask, DynamicMesh, DynamicNode};
use netns_tests::grove::netmanager;
use serde_json::Value;

/// What a [`Sampler`] saw on one node.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub correct: usize,
    pub total: usize,
    pub wrong: BTreeMap<String, usize>,
    /// (member, state) pairs seen other than alive.
    pub unhealthy: BTreeMap<String, usize>,
    /// Slowest `netmanager status` answer.
    pub slowest_status: Duration,
}

impl Samples {
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.correct as f64 / self.total as f64
    }
}

/// Samples `closest.<service>` (every 200 ms) and membership (every
/// second) on some nodes in the background.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Samples>)>,
}

impl Sampler {
    /// `watch`: (node index, the address `closest` must name there).
    pub fn start(mesh: &DynamicMesh, service: &str, watch: &[(usize, Ipv4Addr)]) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (i, want) in watch {
            let node = &mesh.nodes[*i];
            let socket: UdpSocket = node.resolver().expect("resolver socket");
            let (name, sock, want, stop) = (node.name.clone(), node.control_socket.clone(), *want, stop.clone());
            let qname = format!("closest.{service}.grove");
            let handle = std::thread::spawn(move || {
                let mut s = Samples::default();
                let mut last_status = Instant::now() - Duration::from_secs(2);
                while !stop.load(Ordering::Relaxed) {
                    let answer = ask(&socket, &qname).map(|a| a.addresses).unwrap_or_default();
                    s.total += 1;
                    if answer == vec![want] {
                        s.correct += 1;
                    } else {
                        *s.wrong.entry(format!("{answer:?}")).or_default() += 1;
                    }
                    if last_status.elapsed() >= Duration::from_secs(1) {
                        last_status = Instant::now();
                        let asked = Instant::now();
                        let status = netmanager(&["status", "--json", "--socket", &sock.to_string_lossy()]);
                        s.slowest_status = s.slowest_status.max(asked.elapsed());
                        let doc: Value = status
                            .ok()
                            .and_then(|o| serde_json::from_slice(&o.stdout).ok())
                            .unwrap_or(Value::Null);
                        for m in doc["members"]["members"].as_array().into_iter().flatten() {
                            if m["state"] != "alive" {
                                *s.unhealthy
                                    .entry(format!(
                                        "{}={}",
                                        m["name"].as_str().unwrap_or("?"),
                                        m["state"].as_str().unwrap_or("?")
                                    ))
                                    .or_default() += 1;
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                s
            });
            threads.push((name, handle));
        }
        Sampler { stop, threads }
    }

    /// Stops sampling; what each node saw, by name.
    pub fn stop(self) -> BTreeMap<String, Samples> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|(name, t)| (name, t.join().unwrap_or_default()))
            .collect()
    }
}

/// Asserts that `closest` was right at least `min` of the time on every
/// sampled node and that no member was ever seen unhealthy (except those
/// in `may_be_unhealthy`); prints one line per node.
pub fn assert_samples(attack: &str, samples: &BTreeMap<String, Samples>, min: f64, may_be_unhealthy: &[&str], logs: &str) {
    for (node, s) in samples {
        eprintln!(
            "attack={attack} node={node} closest_correct={}/{} ({:.1}%) slowest_status_ms={} unhealthy={:?} wrong={:?}",
            s.correct,
            s.total,
            100.0 * s.ratio(),
            s.slowest_status.as_millis(),
            s.unhealthy,
            s.wrong
        );
    }
    for (node, s) in samples {
        assert!(s.total >= 5, "{node}: only {} samples", s.total);
        assert!(
            s.ratio() >= min,
            "{attack}: {node} answered closest right {:.1}% of the time (want ≥ {:.0}%): {:?}\n{logs}",
            100.0 * s.ratio(),
            100.0 * min,
            s.wrong
        );
        let bad: Vec<&String> = s
            .unhealthy
            .keys()
            .filter(|k| !may_be_unhealthy.iter().any(|m| k.starts_with(&format!("{m}="))))
            .collect();
        assert!(bad.is_empty(), "{attack}: {node} saw {bad:?}\n{logs}");
    }
}

/// A UDP echo server on `ip:port` inside `node`'s namespace (data over the
/// overlay, without `ping`); it stops after a minute without traffic.
pub fn udp_echo(node: &DynamicNode, ip: Ipv4Addr, port: u16) {
    let socket = netns_tests::inns::in_netns(&node.netns, move || UdpSocket::bind(SocketAddr::new(ip.into(), port)))
        .expect("enter netns")
        .unwrap_or_else(|e| panic!("bind {ip}:{port} in {}: {e}", node.name));
    let _ = socket.set_read_timeout(Some(Duration::from_secs(60)));
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
}

/// A client socket inside `node`'s namespace aimed at an echo server.
pub fn echo_client(node: &DynamicNode, to: SocketAddr) -> UdpSocket {
    let socket = netns_tests::inns::in_netns(&node.netns, move || -> std::io::Result<UdpSocket> {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.connect(to)?;
        s.set_read_timeout(Some(Duration::from_millis(300)))?;
        Ok(s)
    })
    .expect("enter netns")
    .unwrap_or_else(|e| panic!("socket in {}: {e}", node.name));
    socket
}

/// One datagram there and back (three tries).
pub fn echoes(socket: &UdpSocket) -> bool {
    let mut buf = [0u8; 64];
    (0..3).any(|i| {
        let msg = format!("grove-echo-{i}");
        socket.send(msg.as_bytes()).is_ok() && socket.recv(&mut buf).is_ok_and(|n| &buf[..n] == msg.as_bytes())
    })
}
