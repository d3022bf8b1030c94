//! The encrypted mesh end to end: real netmanager daemons in namespaces,
//! traffic across the WAN emulator, captures of what crosses the underlay.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use netns_tests::grove::{write_config, write_config_with_endpoints, GroveMesh, MESH_PORT};
use netns_tests::inns::in_netns;
use netns_tests::{ping_with, wait_until_named, ChildGuard, PingOptions, ScratchDir, Signal, Testbed};

use super::pcap::udp_payloads;
use super::support::{build, need_root};

/// A testbed with a grove mesh on it. Fields drop in order: the daemons
/// stop before the namespaces go.
struct MeshBed {
    mesh: GroveMesh,
    dir: ScratchDir,
    tb: Testbed,
}

/// `n` nodes, 2 ms one-way WAN delay, netmanager on the first `grove` of
/// them (the rest are bare namespaces, e.g. attackers). Configs are written
/// but nothing starts until `start` is true.
fn mesh_bed(n: usize, grove: usize, start: bool) -> MeshBed {
    need_root();
    let tb = build(Testbed::builder().with_nodes(n).with_default_delay(Duration::from_millis(2)));
    let dir = ScratchDir::new("mesh").expect("scratch dir");
    let names: Vec<String> = (0..grove).map(|i| format!("n{i}")).collect();
    let specs: Vec<(&str, &str, IpAddr)> = (0..grove)
        .map(|i| (names[i].as_str(), tb.node(i).netns().name(), IpAddr::V4(tb.node(i).ipv4())))
        .collect();
    let mut mesh = GroveMesh::prepare(GroveMesh::plan(&specs), dir.path()).expect("keys and configs");
    if start {
        if let Err(e) = mesh.start_all() {
            panic!("mesh did not start: {e}\n{}", mesh.logs());
        }
    }
    MeshBed { mesh, dir, tb }
}

fn overlay(bed: &MeshBed, i: usize) -> IpAddr {
    IpAddr::V4(bed.mesh.nodes[i].plan.overlay)
}

fn pings(bed: &MeshBed, from: usize, to: IpAddr, count: u32) -> bool {
    let options = PingOptions {
        count,
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(1),
    };
    ping_with(bed.tb.node(from).netns(), to, &options).is_ok_and(|s| s.received > 0)
}

/// Waits until `from` reaches `to` over the overlay (first handshake included).
fn wait_reachable(bed: &MeshBed, from: usize, to: usize) {
    let target = overlay(bed, to);
    if let Err(e) = wait_until_named(&format!("n{from} to reach n{to}"), Duration::from_secs(15), || {
        pings(bed, from, target, 1)
    }) {
        panic!("{e}\n{}", bed.mesh.logs());
    }
}

/// Deterministic pseudo-random bytes (xorshift), so the receiver can check them.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `data` over TCP from node `from` to node `to`'s overlay address and
/// returns what the server received.
fn tcp_transfer(bed: &MeshBed, from: usize, to: usize, port: u16, data: Vec<u8>) -> Vec<u8> {
    let bind = SocketAddr::new(overlay(bed, to), port);
    let listener = in_netns(bed.tb.node(to).netns().name(), move || TcpListener::bind(bind))
        .expect("enter netns")
        .expect("bind on overlay address");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let mut got = Vec::new();
        conn.read_to_end(&mut got).expect("read");
        got
    });
    let mut stream = in_netns(bed.tb.node(from).netns().name(), move || {
        TcpStream::connect_timeout(&bind, Duration::from_secs(10))
    })
    .expect("enter netns")
    .expect("connect over the overlay");
    stream.write_all(&data).expect("send");
    drop(stream);
    server.join().expect("server thread")
}

#[test]
fn mesh_three_nodes_every_pair_pings_and_tcp_arrives_intact() {
    let bed = mesh_bed(3, 3, true);
    for from in 0..3 {
        for to in 0..3 {
            if from != to {
                wait_reachable(&bed, from, to);
            }
        }
    }
    let data = pattern(8 << 20, 42);
    let got = tcp_transfer(&bed, 0, 2, 7001, data.clone());
    assert_eq!(got.len(), data.len(), "all 8 MiB must arrive");
    assert!(got == data, "payload corrupted in transit");
    let status = bed.mesh.nodes[0].status_text().expect("status");
    assert!(status.contains("latest handshake"), "status shows handshakes:\n{status}");
    assert!(status.contains(&bed.mesh.nodes[2].public_key), "status lists the peer:\n{status}");
}

/// tcpdump writing a pcap inside a namespace; stopped with SIGINT so it flushes.
fn capture(bed: &MeshBed, node: usize, iface: &str, filter: &str, tag: &str) -> (ChildGuard, std::path::PathBuf) {
    let file = bed.dir.join(format!("{tag}.pcap"));
    let log = bed.dir.join(format!("{tag}.log"));
    let file_s = file.to_string_lossy().into_owned();
    // --immediate-mode: hand each packet over at once, so what the test
    // sent is in the file before the SIGINT that ends the capture.
    let mut args = vec!["-i", iface, "-n", "-U", "--immediate-mode", "-s", "0", "-w", &file_s];
    args.extend(filter.split(' '));
    let child = bed
        .tb
        .node(node)
        .netns()
        .spawn_logged("tcpdump", &args, &log)
        .expect("tcpdump (apt-get install tcpdump)");
    wait_until_named("tcpdump to listen", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("listening on"))
    })
    .expect("tcpdump started");
    (child, file)
}

fn finish_capture(mut child: ChildGuard, file: &std::path::Path) -> Vec<u8> {
    // Something must have been written beyond the 24-byte pcap header.
    let _ = wait_until_named("capture to hold packets", Duration::from_secs(3), || {
        std::fs::metadata(file).is_ok_and(|m| m.len() > 24)
    });
    child.signal(Signal::Int).expect("stop tcpdump");
    let _ = child.wait_for_exit(Duration::from_secs(5));
    std::fs::read(file).expect("read capture")
}

#[test]
fn mesh_underlay_shows_only_wireguard_messages_never_plaintext() {
    let bed = mesh_bed(2, 2, true);
    wait_reachable(&bed, 0, 1);
    // Captured at the receiver: the sender's veth shows unsegmented GSO
    // super-datagrams, the router (through the WAN emulator) splits them.
    let (underlay, underlay_file) = capture(&bed, 1, "eth0", "udp port 50103", "underlay");
    let (inner, inner_file) = capture(&bed, 0, "grove0", "tcp", "overlay");
    let marker = b"GROVE-PLAINTEXT-MARKER-7c1d";
    let data: Vec<u8> = marker.iter().copied().cycle().take(256 * 1024).collect();
    let got = tcp_transfer(&bed, 0, 1, 7002, data.clone());
    assert_eq!(got.len(), data.len());
    let underlay_pcap = finish_capture(underlay, &underlay_file);
    let inner_pcap = finish_capture(inner, &inner_file);

    let contains = |hay: &[u8]| hay.windows(marker.len()).any(|w| w == marker);
    assert!(contains(&inner_pcap), "control: the marker is visible inside the tunnel");
    assert!(!contains(&underlay_pcap), "plaintext leaked onto the underlay");
    let payloads = udp_payloads(&underlay_pcap);
    assert!(payloads.len() > 100, "the transfer crossed the underlay ({} datagrams)", payloads.len());
    for p in &payloads {
        assert!(p.len() >= 32, "runt datagram of {} bytes", p.len());
        assert!((1..=4).contains(&p[0]) && p[1..4] == [0, 0, 0], "not a WireGuard message: {:02x?}", &p[..4]);
    }
    assert!(payloads.iter().any(|p| p[0] == 4), "data messages present");
}

#[test]
fn mesh_peer_with_unknown_key_cannot_inject() {
    let mut bed = mesh_bed(3, 3, false);
    // n2 knows n1, but n1 (and n0) do not know n2.
    {
        let nodes = &bed.mesh.nodes;
        write_config(&nodes[0], &[&nodes[1]], "").expect("config n0");
        write_config(&nodes[1], &[&nodes[0]], "").expect("config n1");
    }
    bed.mesh.start_all().expect("start");
    wait_reachable(&bed, 0, 1);
    assert!(!pings(&bed, 2, overlay(&bed, 1), 5), "a stranger must not get through");
    let n1 = &bed.mesh.nodes[1];
    wait_until_named("n1 to count unknown_key drops", Duration::from_secs(10), || {
        n1.drops(None, "unknown_key") > 0
    })
    .expect("unknown key counted");
    assert!(pings(&bed, 0, overlay(&bed, 1), 2), "known peers still talk");
}

#[test]
fn mesh_hostile_datagrams_neither_crash_nor_stall_the_daemon() {
    // n0, n1 run grove; namespace 2 is the attacker.
    let mut bed = mesh_bed(3, 2, false);
    // Record real traffic, from the first handshake on, to replay it later.
    let (cap, cap_file) = capture(&bed, 1, "eth0", "udp port 50103", "replay");
    bed.mesh.start_all().expect("start");
    wait_reachable(&bed, 0, 1);
    assert!(pings(&bed, 0, overlay(&bed, 1), 3));
    let real = udp_payloads(&finish_capture(cap, &cap_file));
    let kinds: Vec<(u8, usize)> = real.iter().map(|p| (p.first().copied().unwrap_or(0), p.len())).collect();
    assert!(real.iter().any(|p| p[0] == 1), "captured a handshake initiation to replay: {kinds:?}");
    assert!(real.iter().any(|p| p[0] == 4), "captured data to replay");

    let target = SocketAddr::new(IpAddr::V4(bed.tb.node(1).ipv4()), MESH_PORT);
    let sent = in_netns(bed.tb.node(2).netns().name(), move || -> std::io::Result<usize> {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        let mut n = 0;
        let noise = pattern(3_000_000, 7);
        let mut pos = 0;
        for i in 0..3000usize {
            let len = (noise[i] as usize * 7) % 1500;
            let mut d = noise[pos..pos + len].to_vec();
            pos += len;
            // A third look like WireGuard headers (type 1-4, zero reserved), truncated or padded.
            if i % 3 == 0 && !d.is_empty() {
                d[0] = (i % 4) as u8 + 1;
                if d.len() >= 4 {
                    d[1..4].copy_from_slice(&[0, 0, 0]);
                }
            }
            socket.send_to(&d, target)?;
            n += 1;
            // Pace the burst so the WAN emulator's TUN queue does not overflow.
            if i % 64 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        for p in &real {
            std::thread::sleep(Duration::from_millis(1));
            for _ in 0..3 {
                socket.send_to(p, target)?;
                n += 1;
            }
            for cut in [1, 4, 16, 31] {
                if p.len() > cut {
                    socket.send_to(&p[..p.len() - cut], target)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    })
    .expect("enter netns")
    .expect("send hostile datagrams");
    assert!(sent > 3000);

    let n1 = &bed.mesh.nodes[1];
    let key0 = bed.mesh.nodes[0].public_key.clone();
    // The hostile burst is queued behind the WAN emulator; wait for it to land.
    wait_until_named("replays to be counted", Duration::from_secs(10), || {
        n1.drops(Some(&key0), "replay") + n1.drops(Some(&key0), "handshake_rejected") > 0
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", n1.status()));
    assert!(pings(&bed, 0, overlay(&bed, 1), 3), "the mesh still carries traffic\n{}", bed.mesh.logs());
    let status = n1.status().expect("daemon answers its control socket");
    assert!(status["drops"]["malformed"].as_u64().unwrap_or(0) > 100, "garbage counted: {status}");
    let peer0 = status["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["public_key"] == key0.as_str()))
        .expect("peer n0");
    let endpoint = peer0["endpoint"].as_str().unwrap_or_default();
    assert!(
        endpoint.starts_with(&bed.tb.node(0).ipv4().to_string()),
        "replayed packets from another address must not move the endpoint (now {endpoint})"
    );
}

#[test]
fn mesh_survives_an_underlay_address_change() {
    let bed = mesh_bed(2, 2, true);
    wait_reachable(&bed, 1, 0);
    let ns1 = bed.tb.node(1).netns();
    let old = bed.tb.node(1).ipv4();
    let new = std::net::Ipv4Addr::new(198, 18, 1, 3);
    ns1.sysctl("net.ipv4.conf.all.promote_secondaries", "1").expect("sysctl");
    ns1.sysctl("net.ipv4.conf.eth0.promote_secondaries", "1").expect("sysctl");
    ns1.ip(&["addr", "add", &format!("{new}/24"), "dev", "eth0"]).expect("add new address");
    ns1.ip(&["addr", "del", &format!("{old}/24"), "dev", "eth0"]).expect("drop old address");
    // n1 talks first from its new address; n0 learns it from the
    // authenticated packets and answers there.
    wait_until_named("n1 to reach n0 from its new address", Duration::from_secs(15), || {
        pings(&bed, 1, overlay(&bed, 0), 1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", bed.mesh.logs()));
    let key1 = &bed.mesh.nodes[1].public_key;
    assert_eq!(
        bed.mesh.nodes[0].peer_endpoint(key1),
        Some(SocketAddr::new(IpAddr::V4(new), MESH_PORT)),
        "n0 follows n1 to its new address"
    );
    assert!(pings(&bed, 0, overlay(&bed, 1), 3), "and n0 → n1 works too");
}

#[test]
fn mesh_sigterm_removes_the_tun_and_a_killed_daemon_restarts() {
    let mut bed = mesh_bed(2, 2, true);
    wait_reachable(&bed, 0, 1);
    let ns1 = bed.tb.node(1).netns().name().to_owned();
    let socket = bed.mesh.nodes[1].control_socket.clone();

    let status = bed.mesh.nodes[1].stop_with(Signal::Term).expect("stop");
    assert!(status.is_some_and(|s| s.success()), "clean exit on SIGTERM: {status:?}");
    let link = std::process::Command::new("ip").args(["-n", &ns1, "link", "show", "grove0"]).output().expect("ip");
    assert!(!link.status.success(), "grove0 must be gone after SIGTERM");
    assert!(!socket.exists(), "control socket removed on shutdown");

    // Start, kill -9 (stale socket and all), start again: it must come back.
    bed.mesh.start_node(1).expect("start again");
    bed.mesh.nodes[1].stop_with(Signal::Kill).expect("kill");
    assert!(socket.exists(), "SIGKILL leaves the socket behind");
    bed.mesh.start_node(1).expect("restart over a stale control socket");
    wait_reachable(&bed, 0, 1);
}

#[test]
fn mesh_fails_over_to_a_second_endpoint_over_ipv6() {
    let mut bed = mesh_bed(2, 2, false);
    let v6 = |i: usize| SocketAddr::new(IpAddr::V6(bed.tb.node(i).ipv6()), MESH_PORT);
    // n0 knows n1 first by an IPv4 address nobody answers on, then by IPv6.
    let dead = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 1, 99)), MESH_PORT);
    {
        let nodes = &bed.mesh.nodes;
        write_config_with_endpoints(&nodes[0], &[(&nodes[1], vec![dead, v6(1)])], "").expect("config n0");
        write_config_with_endpoints(&nodes[1], &[(&nodes[0], vec![v6(0)])], "").expect("config n1");
    }
    bed.mesh.start_all().expect("start");
    // boringtun retransmits the initiation after 5 s; that one goes to IPv6.
    wait_until_named("n0 to reach n1 over its second endpoint", Duration::from_secs(20), || {
        pings(&bed, 0, overlay(&bed, 1), 1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", bed.mesh.logs()));
    let key1 = bed.mesh.nodes[1].public_key.clone();
    assert_eq!(bed.mesh.nodes[0].peer_endpoint(&key1), Some(v6(1)));
    let data = pattern(1 << 20, 9);
    assert!(tcp_transfer(&bed, 0, 1, 7003, data.clone()) == data, "TCP over the IPv6 underlay");
}

/// One raw HTTP/1.1 exchange on the local API socket.
fn http(socket: &std::path::Path, request: &str) -> String {
    use std::os::unix::net::UnixStream;
    let mut stream = UnixStream::connect(socket).expect("connect to the API socket");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn mesh_local_api_speaks_http_json_and_is_root_only() {
    use std::os::unix::fs::PermissionsExt;
    let bed = mesh_bed(2, 2, true);
    let socket = &bed.mesh.nodes[0].control_socket;
    let mode = std::fs::metadata(socket).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the API socket is root-only");

    let ok = http(socket, "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("application/json") && ok.contains(&bed.mesh.nodes[1].public_key), "{ok}");

    let missing = http(socket, "GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404") && missing.contains("\"error\""), "{missing}");
    let wrong = http(socket, "DELETE /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(wrong.starts_with("HTTP/1.1 405"), "{wrong}");
    let garbage = http(socket, "\x00\x01 not http at all\r\n\r\n");
    assert!(garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    // Still serving after all that.
    assert!(bed.mesh.nodes[0].status().is_ok());
}
