//! A small testbed of real network namespaces for the workload isolation
//! tests in `netns_tests` (root only). One topology per test, all names
//! unique, everything deleted on drop:
//!
//! ```text
//!  lan ns                node ns                                  workload ns
//!  lan0 192.168.77.2 ── glan0 192.168.77.1 (default route)        (Workloads::create)
//!  (routes 10.18/16          grove-br 10.18.0.65/26 ──veth── eth0 10.18.0.66/26
//!   via the node)            grove0 10.18.0.65/16 ──veth── peer0 10.18.1.1/26
//!                            (stands in for the mesh TUN)      mesh ns (another node,
//!                                                              routes the LAN via us)
//! ```
//!
//! Reverse-path filtering also drops much of what the rules refuse (its
//! check runs the rules backwards), so the probes run with `rp_filter` off
//! in the node, where each rule alone decides, and loose, as systemd sets it.
//!
//! Reachability is checked with UDP sockets bound inside the namespaces
//! (there is no `ping` on the build machines); sockets are made on a
//! short-lived thread that entered the namespace, and keep it afterwards.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::isolation::PREFS;
use super::{cleanup_stale, linux, names, WorkloadKey, WorkloadNet, Workloads};

pub(super) const MESH: &str = "grove0";
pub(super) const LAN_PORT: &str = "glan0";
pub(super) const SUBNET: &str = "10.18.0.64/26";
pub(super) const WORKLOAD: Ipv4Addr = Ipv4Addr::new(10, 18, 0, 66);
pub(super) const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 18, 0, 65);
pub(super) const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 18, 1, 1);
pub(super) const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
/// Outside the subnet, given to the workload to send spoofed packets from.
pub(super) const SPOOFED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
pub(super) const PORT: u16 = 4000;
/// How long a packet that should not arrive is waited for.
pub(super) const SILENCE: Duration = Duration::from_millis(500);
/// How long a packet that should arrive may take (the first waits for ARP).
pub(super) const DELIVERY: Duration = Duration::from_secs(3);

pub(super) static NEXT: AtomicU32 = AtomicU32::new(0);

pub(super) fn skip_unless_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping {test}: needs root (creates network namespaces)");
    }
    !root
}

/// Runs `f` on a fresh thread inside namespace `netns`; a panic in `f`
/// fails the caller with the same message.
pub(super) fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            let path = Path::new(linux::NETNS_RUN_DIR).join(netns);
            let file = std::fs::File::open(&path).expect("namespace file");
            // SAFETY: a namespace fd that stays open for the call; setns only
            // moves this dedicated thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {netns}: {}", std::io::Error::last_os_error());
            f()
        });
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

pub(super) fn ip(args: &[&str]) {
    linux::ip(args).unwrap_or_else(|e| panic!("{e}"));
}

/// `ip -n <netns> <command>`, the command split at spaces.
pub(super) fn ip_in(netns: &str, command: &str) {
    let mut args = vec!["-n", netns];
    args.extend(command.split_whitespace());
    ip(&args);
}

/// The namespaces of one test; deleted on drop, pass or fail.
pub(super) struct Topology {
    pub node: String,
    pub lan: String,
    pub mesh: String,
    /// The node's workload netns prefix.
    pub prefix: String,
}

impl Topology {
    pub(super) fn new() -> Topology {
        let id = format!(
            "gwt{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let t = Topology {
            node: format!("{id}-node"),
            lan: format!("{id}-lan"),
            mesh: format!("{id}-mesh"),
            prefix: id,
        };
        for netns in [&t.node, &t.lan, &t.mesh] {
            ip(&["netns", "add", netns]);
            ip_in(netns, "link set lo up");
            // Interfaces made from here on copy `default`; `all` is the
            // floor. Each test sets what it needs on top.
            in_netns(netns, || {
                linux::write_conf("default", "rp_filter", "0").expect("rp_filter");
                linux::write_conf("all", "rp_filter", "0").expect("rp_filter");
            });
        }
        let (node, lan, mesh) = (t.node.as_str(), t.lan.as_str(), t.mesh.as_str());
        // The mesh TUN's stand-in: the gateway with the pool's prefix, as
        // netmanager gives the TUN, and another node's gateway beyond it.
        ip_in(
            node,
            &format!("link add {MESH} type veth peer name peer0 netns {mesh}"),
        );
        ip_in(node, &format!("addr add 10.18.0.65/16 dev {MESH}"));
        ip_in(node, &format!("link set {MESH} up"));
        ip_in(mesh, "addr add 10.18.1.1/26 dev peer0");
        ip_in(mesh, "link set peer0 up");
        ip_in(mesh, "route add 10.18.0.65/32 dev peer0");
        ip_in(mesh, "route add 10.18.0.0/16 via 10.18.0.65");
        ip_in(mesh, "route add 192.168.77.0/24 via 10.18.0.65");
        // A LAN host that routes the pool via the node (F11's attacker).
        ip_in(
            node,
            &format!("link add {LAN_PORT} type veth peer name lan0 netns {lan}"),
        );
        ip_in(node, &format!("addr add 192.168.77.1/24 dev {LAN_PORT}"));
        ip_in(node, &format!("link set {LAN_PORT} up"));
        ip_in(lan, "addr add 192.168.77.2/24 dev lan0");
        ip_in(lan, "link set lan0 up");
        ip_in(lan, "route add 10.18.0.0/16 via 192.168.77.1");
        // The LAN is the node's uplink: with a default route, loose
        // reverse-path filtering accepts any source.
        ip_in(node, "route add default via 192.168.77.2");
        t
    }

    pub(super) fn net(&self) -> WorkloadNet {
        WorkloadNet::new(
            "grove-br",
            SUBNET.parse().expect("subnet"),
            MESH,
            &self.prefix,
        )
    }

    /// `net.ipv4.ip_forward` in the node: every interface's `forwarding`.
    pub(super) fn set_node_forwarding(&self, on: bool) {
        in_netns(&self.node, || {
            std::fs::write("/proc/sys/net/ipv4/ip_forward", if on { "1" } else { "0" })
                .expect("ip_forward");
        });
    }

    /// `conf.all.rp_filter` in the node: the least each interface does.
    pub(super) fn set_node_rp_filter(&self, value: &str) {
        in_netns(&self.node, || {
            linux::write_conf("all", "rp_filter", value).expect("rp_filter")
        });
    }

    pub(super) fn node_conf(&self, interface: &str, key: &str) -> String {
        in_netns(&self.node, || {
            linux::read_conf(interface, key).expect("node sysctl")
        })
    }

    pub(super) fn node_rules(&self) -> Vec<u32> {
        let prefs = in_netns(&self.node, || linux::rule_prefs().expect("ip rule"));
        prefs.into_iter().filter(|p| PREFS.contains(p)).collect()
    }

    pub(super) fn setup(&self) -> Workloads {
        let net = self.net();
        in_netns(&self.node, || {
            cleanup_stale(&net.netns_prefix).expect("cleanup");
            Workloads::setup(net).expect("setup")
        })
    }

    pub(super) fn create(&self, workloads: &mut Workloads, number: u32) -> String {
        let key = WorkloadKey::new("ms2", "cam", "default", number).expect("key");
        in_netns(&self.node, || workloads.create(key).expect("create").netns)
    }

    pub(super) fn teardown(&self, workloads: Workloads) {
        in_netns(&self.node, || workloads.teardown());
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // By name only, from the test's own namespace: cleanup_stale here
        // would also remove policy rules of *this* namespace. The veth pairs
        // and rules go with the namespaces.
        for netns in linux::netns_names().unwrap_or_default() {
            if names::is_netns_name(&self.prefix, &netns) {
                let _ = linux::ip(&["netns", "del", &netns]);
                linux::remove_etc_netns(&netns);
            }
        }
        for netns in [&self.node, &self.lan, &self.mesh] {
            if let Err(e) = linux::ip(&["netns", "del", netns]) {
                eprintln!("cannot delete test namespace {netns}: {e}");
            }
        }
    }
}

/// Whether a datagram from `from_ns` (sent from `source`, any address if
/// `None`) reaches a socket bound to `to` in `to_ns` within `within`.
pub(super) fn delivered(
    from_ns: &str,
    source: Option<Ipv4Addr>,
    to_ns: &str,
    to: Ipv4Addr,
    within: Duration,
) -> bool {
    let listener = in_netns(to_ns, || {
        UdpSocket::bind((to, PORT)).expect("bind listener")
    });
    listener
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let sender = in_netns(from_ns, || {
        UdpSocket::bind((source.unwrap_or(Ipv4Addr::UNSPECIFIED), 0)).expect("bind sender")
    });
    let payload = format!("probe {}", NEXT.fetch_add(1, Ordering::SeqCst));
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        // Refusals come back as ICMP, which an unconnected socket ignores.
        let _ = sender.send_to(payload.as_bytes(), (to, PORT));
        while let Ok(n) = listener.recv(&mut buf) {
            if buf.get(..n) == Some(payload.as_bytes()) {
                return true;
            }
        }
    }
    false
}

pub(super) fn reaches(from_ns: &str, to_ns: &str, to: Ipv4Addr) -> bool {
    delivered(from_ns, None, to_ns, to, DELIVERY)
}

pub(super) fn blocked(from_ns: &str, to_ns: &str, to: Ipv4Addr) -> bool {
    !delivered(from_ns, None, to_ns, to, SILENCE)
}
