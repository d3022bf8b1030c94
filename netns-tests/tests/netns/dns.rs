//! Semantic DNS end to end: netmanagers at real sites, instances registered
//! through the local API, names resolved by the system resolver of a
//! namespace and by dig across the overlay, other names forwarded.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use netns_tests::grove::GroveMesh;
use netns_tests::inns::in_netns;
use netns_tests::{wait_until_named, ScratchDir, Site, Testbed};

use super::support::{build, need_root};

/// `/etc/netns/<ns>/resolv.conf`, which `ip netns exec` mounts over
/// /etc/resolv.conf for processes in that namespace; removed on drop.
struct NetnsResolvConf(PathBuf);

impl NetnsResolvConf {
    fn write(netns: &str, text: &str) -> Self {
        let dir = PathBuf::from(format!("/etc/netns/{netns}"));
        std::fs::create_dir_all(&dir).expect("create /etc/netns/<ns>");
        std::fs::write(dir.join("resolv.conf"), text).expect("write resolv.conf");
        NetnsResolvConf(dir)
    }
}

impl Drop for NetnsResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A one-name upstream resolver: answers `example.test. A 192.0.2.1` to
/// anything, counting queries. Hand-built bytes keep the test independent of
/// the code under test.
fn stub_upstream(socket: UdpSocket) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let query = &buf[..n];
            // Question ends after the name's zero label plus type and class.
            let Some(end) = query[12..].iter().position(|b| *b == 0).map(|p| 12 + p + 1 + 4) else {
                continue;
            };
            let mut reply = query[..end.min(n)].to_vec();
            reply[2] = 0x81; // QR, RD
            reply[3] = 0x80; // RA, NOERROR
            reply[6..8].copy_from_slice(&1u16.to_be_bytes()); // ANCOUNT
            reply[8..12].copy_from_slice(&[0, 0, 0, 0]);
            let qtype = [query[end - 4], query[end - 3]];
            if qtype == [0, 1] {
                reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
            } else {
                reply[6..8].copy_from_slice(&0u16.to_be_bytes());
            }
            let _ = socket.send_to(&reply, from);
        }
    });
    count
}

/// `POST /v1/instances` on a node's local API, with curl as a user would.
fn register(socket: &std::path::Path, body: &str) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "--unix-socket"])
        .arg(socket)
        .args(["http://netmanager/v1/instances", "-d", body])
        .output()
        .expect("curl (apt-get install curl)");
    assert!(out.status.success(), "register {body}: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn dns_closest_resolves_through_the_system_resolver_and_forwards_the_rest() {
    need_root();
    let sites = [
        Site::new("munich", 48.14, 11.58),
        Site::new("frankfurt", 50.11, 8.68),
        Site::new("helsinki", 60.17, 24.94),
    ];
    let mut builder = Testbed::builder();
    for site in &sites {
        builder = builder.with_node_at(site.name.clone(), site.clone());
    }
    let tb = build(builder);
    let dir = ScratchDir::new("dns").expect("scratch");
    let specs: Vec<(&str, &str, IpAddr)> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), tb.node(i).netns().name(), IpAddr::V4(tb.node(i).ipv4())))
        .collect();
    let mut plans = GroveMesh::plan(&specs);
    for (plan, site) in plans.iter_mut().zip(&sites) {
        plan.location = Some((site.lat, site.lon));
    }
    let mut mesh = GroveMesh::prepare(plans, dir.path()).expect("configs");

    // munich forwards other names to a stub upstream inside its namespace.
    let ns0 = tb.node(0).netns().name().to_owned();
    let upstream = in_netns(&ns0, || UdpSocket::bind("127.0.0.1:0")).expect("netns").expect("bind stub");
    let upstream_addr: SocketAddr = upstream.local_addr().expect("addr");
    let queries_seen = stub_upstream(upstream);
    {
        let others: Vec<&netns_tests::grove::GroveNode> = mesh.nodes[1..].iter().collect();
        let extra = format!("[dns.forward]\nupstreams = [\"{upstream_addr}\"]\n");
        netns_tests::grove::write_config(&mesh.nodes[0], &others, &extra).expect("config munich");
    }
    mesh.start_all().unwrap_or_else(|e| panic!("{e}"));

    // ms2 runs in frankfurt (instance 1) and helsinki (instance 2).
    let api = mesh.nodes[0].control_socket.clone();
    register(&api, r#"{"service":"ms2","app":"cam","number":1,"node":"frankfurt","ipv4":"10.18.0.2"}"#);
    register(&api, r#"{"service":"ms2","app":"cam","number":2,"node":"helsinki","ipv4":"10.18.0.3"}"#);

    let _resolv = NetnsResolvConf::write(&ns0, "nameserver 127.0.0.153\nsearch grove\noptions ndots:5 timeout:1 attempts:2\n");
    let getent = |name: &str| {
        let out = tb.node(0).netns().exec("getent", &["ahostsv4", name]).expect("getent");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut answer = String::new();
    wait_until_named("closest.ms2 to resolve", Duration::from_secs(10), || {
        answer = getent("closest.ms2");
        !answer.is_empty()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs()));
    assert!(answer.starts_with("10.18.0.2"), "munich's closest ms2 is frankfurt's: {answer}");
    assert!(getent("instance-2.ms2").starts_with("10.18.0.3"), "instance-N names the instance");

    let forwarded = getent("example.test");
    assert!(forwarded.starts_with("192.0.2.1"), "forwarded to the stub upstream: {forwarded:?}");
    let before = queries_seen.load(std::sync::atomic::Ordering::SeqCst);
    assert!(getent("example.test").starts_with("192.0.2.1"));
    assert_eq!(
        queries_seen.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "the second lookup is answered from the cache"
    );

    // Across the overlay: helsinki asks munich's resolver with dig.
    let overlay0 = mesh.nodes[0].plan.overlay.to_string();
    let dig = tb
        .node(2)
        .netns()
        .exec("dig", &["+short", "+tries=3", "+time=2", &format!("@{overlay0}"), "closest.ms2.grove", "A"])
        .expect("dig (apt-get install dnsutils)");
    assert_eq!(String::from_utf8_lossy(&dig.stdout).trim(), "10.18.0.2", "answered for munich, the resolver's node");
    let unknown = tb
        .node(2)
        .netns()
        .exec("dig", &[&format!("@{overlay0}"), "closest.nosuch.grove", "A"])
        .expect("dig");
    let text = String::from_utf8_lossy(&unknown.stdout);
    assert!(text.contains("NXDOMAIN") && text.contains("SOA"), "unknown service: NXDOMAIN with SOA\n{text}");
}
