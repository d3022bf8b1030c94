//! Wire tests: a real `DnsServer` on 127.0.0.1:0, asked over UDP and TCP
//! (hickory-proto messages on plain sockets, and `dig` where installed),
//! forwarding to a stub upstream the test runs. Loopback only.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dns::{
    DnsConfig, DnsServer, ForwardConfig, Instance, InstanceKey, InstanceSpec, MemoryDirectory, NamedPort, NodeId, Protocol, QueryKind, RcodeClass, RttEstimate,
};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const WAIT: Duration = Duration::from_secs(5);

fn instance(service: &str, number: u32, node: &str) -> Instance {
    let key = InstanceKey::new(service, "web", "prod", number).expect("valid names");
    let spec = InstanceSpec::new(key)
        .with_ipv4(Ipv4Addr::new(10, 30, (number >> 8) as u8, number as u8))
        .with_port(NamedPort::new("http", Protocol::Tcp, 8080).expect("valid port"));
    Instance::new(spec, NodeId::new(node))
}

/// `ms2`: instance 0 on n-near (with IPv6), 1 on n-far; `big`: 150 instances.
fn directory() -> Arc<MemoryDirectory> {
    let dir = MemoryDirectory::new(NodeId::new("local"));
    let mut near = instance("ms2", 0, "n-near");
    near.spec.ipv6 = Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
    dir.register(near).expect("register");
    dir.register(instance("ms2", 1, "n-far")).expect("register");
    for n in 0..150 {
        dir.register(instance("big", n, "n-far")).expect("register");
    }
    dir.set_rtt(
        &NodeId::new("n-near"),
        Some(RttEstimate::measured(Duration::from_millis(3))),
    );
    dir.set_rtt(
        &NodeId::new("n-far"),
        Some(RttEstimate::measured(Duration::from_millis(90))),
    );
    Arc::new(dir)
}

async fn start(forward: ForwardConfig) -> (DnsServer, SocketAddr) {
    let config = DnsConfig {
        listen: vec!["127.0.0.1:0".parse().expect("addr")],
        forward,
        ..DnsConfig::default()
    };
    let server = DnsServer::start(config, directory()).await.expect("start");
    let addr = server.local_addrs()[0];
    assert_ne!(addr.port(), 0);
    (server, addr)
}

fn no_forwarding() -> ForwardConfig {
    ForwardConfig {
        enabled: false,
        ..ForwardConfig::default()
    }
}

fn request(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(0x5151, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if let Some(payload) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        m.set_edns(e);
    }
    m.to_vec().expect("encode")
}

async fn udp_raw(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.send_to(bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(wait, socket.recv(&mut buf))
        .await
        .ok()?
        .expect("recv");
    Some(Message::from_vec(&buf[..n]).expect("response parses"))
}

async fn udp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    udp_raw(server, &request(name, qtype, Some(1232)), WAIT)
        .await
        .expect("an answer")
}

async fn tcp(server: SocketAddr, bytes: &[u8]) -> Message {
    let mut stream = TcpStream::connect(server).await.expect("connect");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.expect("send");
    let len = tokio::time::timeout(WAIT, stream.read_u16())
        .await
        .expect("in time")
        .expect("len");
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await.expect("body");
    Message::from_vec(&buf).expect("response parses")
}

fn soa_minimum(m: &Message) -> Option<u32> {
    m.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.minimum),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_over_udp_and_tcp() {
    let (server, addr) = start(no_forwarding()).await;

    let m = udp(addr, "closest.ms2.web.grove.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data, RData::A(Ipv4Addr::new(10, 30, 0, 0).into()));
    assert!(m.edns.is_some());

    let m = tcp(addr, &request("closest.ms2.web.grove.", RecordType::A, None)).await;
    assert_eq!(m.answers[0].data, RData::A(Ipv4Addr::new(10, 30, 0, 0).into()));

    // Case-insensitive, the asker's case echoed.
    let m = udp(addr, "ClOsEsT.MS2.Web.GROVE.", RecordType::A).await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].name.to_ascii(), "ClOsEsT.MS2.Web.GROVE.");

    let m = udp(addr, "closest.ms2.web.grove.", RecordType::AAAA).await;
    assert_eq!(
        m.answers[0].data,
        RData::AAAA(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into())
    );

    let m = udp(addr, "_http._tcp.all.ms2.web.grove.", RecordType::SRV).await;
    assert_eq!(m.answers.len(), 2);
    assert_eq!(
        m.additionals
            .iter()
            .filter(|r| r.record_type() == RecordType::A)
            .count(),
        2
    );

    let m = udp(addr, "explain.closest.ms2.web.grove.", RecordType::TXT).await;
    assert!(matches!(m.answers[0].data, RData::TXT(_)));

    // NXDOMAIN and NODATA carry the SOA, MINIMUM = negative TTL.
    let m = udp(addr, "closest.nope.grove.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(soa_minimum(&m), Some(5));
    let m = udp(addr, "instance-1.ms2.web.grove.", RecordType::AAAA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(soa_minimum(&m), Some(5));

    // Outside the zone, forwarding off.
    let m = udp(addr, "example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let (server, addr) = start(no_forwarding()).await;
    for edns in [None, Some(1232), Some(4096)] {
        let bytes = request("all.big.web.grove.", RecordType::A, edns);
        let m = udp_raw(addr, &bytes, WAIT).await.expect("answer");
        assert!(m.metadata.truncation, "{edns:?}");
        let m = tcp(addr, &bytes).await;
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 150);
    }
    // Counted before sending, so already there; truncation is known only
    // once the response is encoded and may land just after the client read it.
    let stats = server.stats();
    assert_eq!(stats.count(QueryKind::All, RcodeClass::NoError), 6);
    let deadline = tokio::time::Instant::now() + WAIT;
    while stats.truncated() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(stats.truncated(), 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_resolves_grove_names() {
    let (server, addr) = start(no_forwarding()).await;
    let port = addr.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &port,
                "+short",
                "+tries=1",
                "+time=3",
                "closest.ms2.web.grove",
            ])
            .output()
    })
    .await
    .expect("join");
    match out {
        Ok(out) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10.30.0.0"),
        Err(e) => eprintln!("dig not available, skipped: {e}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_get_formerr_or_nothing_and_serving_goes_on() {
    let (server, addr) = start(no_forwarding()).await;
    let header = |qd: u8| vec![0xab, 0xcd, 0x01, 0x00, 0x00, qd, 0, 0, 0, 0, 0, 0];
    let mut looped = header(1);
    looped.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    let mut long_name = header(1);
    for _ in 0..5 {
        long_name.push(60);
        long_name.extend_from_slice(&[b'a'; 60]);
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut random = vec![0u8; 200];
    let mut x: u32 = 0x9e37_79b9;
    for b in &mut random {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    random[2] &= 0x7f; // a query, so it is not dropped as a response
    for (what, bytes) in [
        ("random", random),
        ("short header", vec![1, 2, 3, 4, 5]),
        ("truncated question", header(1)),
        ("compression loop", looped),
        ("300-byte name", long_name),
    ] {
        if let Some(m) = udp_raw(addr, &bytes, Duration::from_millis(300)).await {
            assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{what}");
        }
        let ok = udp(addr, "closest.ms2.web.grove.", RecordType::A).await;
        assert_eq!(ok.answers.len(), 1, "still serving after {what}");
    }
    server.shutdown().await;
}

/// A UDP responder answering `A 192.0.2.1` (TTL 60) for anything, counting queries.
async fn stub_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            r.metadata.recursion_available = true;
            r.add_queries(q.queries.clone());
            if let Some(query) = q.queries.first() {
                r.add_answer(Record::from_rdata(
                    query.name().clone(),
                    60,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                ));
            }
            let _ = socket.send_to(&r.to_vec().expect("encode"), from).await;
        }
    });
    (addr, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_outside_names_with_a_cache() {
    let (upstream, count) = stub_upstream().await;
    let (server, addr) = start(ForwardConfig {
        enabled: true,
        upstreams: vec![upstream],
        ..ForwardConfig::default()
    })
    .await;
    for _ in 0..2 {
        let m = udp(addr, "example.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.recursion_available);
        assert_eq!(m.answers[0].data, RData::A(Ipv4Addr::new(192, 0, 2, 1).into()));
    }
    assert_eq!(count.load(Ordering::SeqCst), 1, "the second answer came from the cache");
    // Zone names are never forwarded.
    let _ = udp(addr, "closest.nope.grove.", RecordType::A).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_is_servfail_not_a_hang() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let (server, addr) = start(ForwardConfig {
        enabled: true,
        upstreams: vec![silent_addr],
        ..ForwardConfig::default()
    })
    .await;
    let started = std::time::Instant::now();
    let m = udp(addr, "example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_secs(4));
    // The extended error says what failed, not where (review F27).
    let text = ede_text(&m).expect("an EDE");
    assert!(text.contains("did not answer"), "{text}");
    assert!(!text.contains(&silent_addr.ip().to_string()), "{text}");
    assert!(!text.contains(&silent_addr.port().to_string()), "{text}");
    server.shutdown().await;
}

/// The EXTRA-TEXT of the response's extended DNS error (RFC 8914), if any.
fn ede_text(m: &Message) -> Option<String> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let EdnsOption::Unknown(_, bytes) = m.edns.as_ref()?.option(EdnsCode::from(15))? else {
        return None;
    };
    Some(String::from_utf8_lossy(bytes.get(2..)?).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_the_port() {
    let (server, addr) = start(no_forwarding()).await;
    server.shutdown().await;
    let config = DnsConfig {
        listen: vec![addr],
        forward: no_forwarding(),
        ..DnsConfig::default()
    };
    let again = DnsServer::start(config, directory())
        .await
        .expect("rebind after shutdown");
    assert_eq!(
        udp(addr, "closest.ms2.web.grove.", RecordType::A).await.answers.len(),
        1
    );
    again.shutdown().await;
}

#[path = "wire/limits_tests.rs"]
mod limits_tests;
