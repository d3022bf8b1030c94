//! The front door and the forwarder's bounds against hostile peers on
//! loopback: a client outside `allow_from`, a flooding client, an upstream
//! that answers 60 KiB TXT over TCP fallback, and one that never answers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dns::{DnsConfig, DnsServer, ForwardConfig, ForwardError, Forwarder, RateLimitConfig};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::task::JoinSet;

use super::{directory, ede_text, request, WAIT};

async fn start_with(config: DnsConfig) -> (DnsServer, SocketAddr) {
    let config = DnsConfig {
        listen: vec!["127.0.0.1:0".parse().expect("addr")],
        ..config
    };
    let server = DnsServer::start(config, directory()).await.expect("start");
    let addr = server.local_addrs()[0];
    (server, addr)
}

fn forwarding_to(upstream: SocketAddr) -> ForwardConfig {
    ForwardConfig {
        enabled: true,
        upstreams: vec![upstream],
        ..ForwardConfig::default()
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

/// Sends `bytes` from a socket bound to `from`; the response, if one comes within `wait`.
async fn udp_from(from: Ipv4Addr, server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Message> {
    let socket = UdpSocket::bind((from, 0)).await.expect("bind");
    socket.send_to(bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(wait, socket.recv(&mut buf))
        .await
        .ok()?
        .expect("recv");
    Some(Message::from_vec(&buf[..n]).expect("response parses"))
}

async fn tcp_from(from: Ipv4Addr, server: SocketAddr, bytes: &[u8]) -> Message {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind((from, 0).into()).expect("bind");
    let mut stream = socket.connect(server).await.expect("connect");
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

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_outside_allow_from_gets_nothing_over_udp_and_refused_over_tcp() {
    // Allowed: 127.0.0.2 only, so 127.0.0.1 stands for the LAN.
    let config = DnsConfig {
        allow_from: vec!["127.0.0.2/32".parse().expect("prefix")],
        forward: ForwardConfig {
            enabled: false,
            ..ForwardConfig::default()
        },
        ..DnsConfig::default()
    };
    let (server, addr) = start_with(config).await;
    let bytes = request("closest.ms2.web.grove.", RecordType::A, Some(1232));
    let lan = Ipv4Addr::new(127, 0, 0, 1);
    let workload = Ipv4Addr::new(127, 0, 0, 2);

    assert!(udp_from(lan, addr, &bytes, Duration::from_millis(300)).await.is_none());
    let m = tcp_from(lan, addr, &bytes).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());

    let m = udp_from(workload, addr, &bytes, WAIT).await.expect("answered");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    let m = tcp_from(workload, addr, &bytes).await;
    assert_eq!(m.answers.len(), 1);

    assert_eq!(server.stats().not_allowed(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_rate_limited_and_another_is_not() {
    let config = DnsConfig {
        rate_limit: RateLimitConfig {
            // A slow refill, so that the counts hold on a loaded machine.
            qps: 1,
            burst: 20,
            clients: 64,
            slip: 2,
        },
        forward: ForwardConfig {
            enabled: false,
            ..ForwardConfig::default()
        },
        ..DnsConfig::default()
    };
    let (server, addr) = start_with(config).await;
    let bytes = request("grove.", RecordType::SOA, Some(1232));
    let flood = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    // 100, not more: a burst of datagrams beyond the socket buffers would be
    // lost by the kernel and spoil the counts.
    for _ in 0..100 {
        flood.send_to(&bytes, addr).await.expect("send");
    }
    let (mut answered, mut truncated) = (0, 0);
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), flood.recv(&mut buf)).await {
        let m = Message::from_vec(&buf[..n]).expect("parses");
        if m.metadata.truncation {
            truncated += 1;
        } else {
            answered += 1;
        }
    }
    // The burst, plus what 1 qps refills while the flood is served.
    assert!((20..=23).contains(&answered), "answered {answered}");
    assert!(
        truncated >= 30,
        "truncated {truncated}: every 2nd over-limit query slips"
    );
    assert!(answered + truncated < 100, "the rest got nothing");
    let stats = server.stats();
    assert_eq!(stats.rate_limited() as usize, 100 - answered);
    assert_eq!(stats.rate_slipped() as usize, truncated);

    let m = udp_from(Ipv4Addr::new(127, 0, 0, 2), addr, &bytes, WAIT)
        .await
        .expect("another client is answered");
    assert_eq!(m.answers.len(), 1);
    server.shutdown().await;
}

/// A hostile upstream on one port: over UDP every answer is truncated;
/// over TCP, any name gets a 60 KiB TXT answer with TTL 3600. Counts the
/// TCP queries.
async fn big_txt_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = udp.local_addr().expect("addr");
    let tcp = TcpListener::bind(addr).await.expect("bind tcp on the same port");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            r.metadata.truncation = true;
            r.add_queries(q.queries.clone());
            let _ = udp.send_to(&r.to_vec().expect("encode"), from).await;
        }
    });
    // The answer record is encoded once: its owner is fixed (the forwarder
    // checks the question, not the owner), so each response is the
    // question's header and question plus these bytes.
    let strings: Vec<String> = (0..240).map(|_| "t".repeat(255)).collect();
    let mut template = Message::new(0, MessageType::Response, OpCode::Query);
    template.add_answer(Record::from_rdata(
        name("big.test."),
        3600,
        RData::TXT(TXT::new(strings)),
    ));
    let record: Arc<[u8]> = template.to_vec().expect("encode")[12..].into();
    assert!(record.len() > 60 * 1024);
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            let record = record.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(len) = stream.read_u16().await else { return };
                let mut buf = vec![0u8; usize::from(len)];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Ok(q) = Message::from_vec(&buf) else { return };
                seen.fetch_add(1, Ordering::SeqCst);
                let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
                r.add_queries(q.queries.clone());
                let mut bytes = r.to_vec().expect("encode");
                bytes[7] = 1; // ANCOUNT = 1
                bytes.extend_from_slice(&record);
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                let _ = stream.write_all(&framed).await;
            });
        }
    });
    (addr, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_big_txt_answers_keep_the_cache_within_its_byte_budget() {
    let (upstream, count) = big_txt_upstream().await;
    let config = forwarding_to(upstream);
    let budget = config.cache_bytes;
    let forwarder = Arc::new(Forwarder::with_config(vec![upstream], &config));
    let client: IpAddr = Ipv4Addr::new(10, 18, 0, 5).into();
    let mut tasks = JoinSet::new();
    let mut peak = 0;
    for n in 0..10_000u32 {
        if tasks.len() >= 16 {
            let answer = tasks.join_next().await.expect("a task").expect("joined");
            assert_eq!(answer, Ok(240), "every answer is relayed whole");
            peak = peak.max(forwarder.cache_bytes());
        }
        let forwarder = forwarder.clone();
        tasks.spawn(async move {
            let query = Query::query(name(&format!("n{n}.big.test.")), RecordType::TXT);
            match forwarder.resolve(&query, client).await {
                Ok(f) => Ok(match &f.answers[..] {
                    [r] => match &r.data {
                        RData::TXT(txt) => txt.txt_data.len(),
                        _ => 0,
                    },
                    _ => 0,
                }),
                Err(e) => Err(e.to_string()),
            }
        });
    }
    while let Some(answer) = tasks.join_next().await {
        assert_eq!(answer.expect("joined"), Ok(240));
    }
    assert_eq!(count.load(Ordering::SeqCst), 10_000);
    let bytes = forwarder.cache_bytes();
    assert!(
        peak <= budget && bytes <= budget,
        "peak {peak}, now {bytes}, budget {budget}"
    );
    // Full, not empty: the newest answers are cached (~136 of them at 8 MiB).
    assert!(bytes > budget / 2, "{bytes}");
    assert!(
        (100..=140).contains(&forwarder.cache_len()),
        "{}",
        forwarder.cache_len()
    );
    let query = Query::query(name("n9999.big.test."), RecordType::TXT);
    assert!(forwarder.resolve(&query, client).await.is_ok());
    assert_eq!(
        count.load(Ordering::SeqCst),
        10_000,
        "the newest answer came from the cache"
    );
}

/// A UDP upstream that answers `A 192.0.2.7` after `delay`, counting queries.
async fn slow_upstream(delay: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let addr = socket.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let socket = socket.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
                r.add_queries(q.queries.clone());
                if let Some(query) = q.queries.first() {
                    r.add_answer(Record::from_rdata(
                        query.name().clone(),
                        60,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
                    ));
                }
                let _ = socket.send_to(&r.to_vec().expect("encode"), from).await;
            });
        }
    });
    (addr, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_queries_in_flight_share_one_upstream_query() {
    let (upstream, count) = slow_upstream(Duration::from_millis(300)).await;
    let forwarder = Arc::new(Forwarder::with_config(vec![upstream], &forwarding_to(upstream)));
    let mut tasks = JoinSet::new();
    for n in 0..24u8 {
        let forwarder = forwarder.clone();
        // Three clients, eight queries each: within the per-client share.
        let client: IpAddr = Ipv4Addr::new(10, 18, 0, 1 + n % 3).into();
        tasks.spawn(async move {
            let query = Query::query(name("Same.Example.Test."), RecordType::A);
            forwarder
                .resolve(&query, client)
                .await
                .map(|f| f.answers[0].data.clone())
        });
    }
    while let Some(answer) = tasks.join_next().await {
        assert_eq!(
            answer.expect("joined").expect("answered"),
            RData::A(A(Ipv4Addr::new(192, 0, 2, 7)))
        );
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "one upstream query for 24 identical ones"
    );
    assert_eq!(forwarder.upstream_queries(), 1);
    assert_eq!(forwarder.coalesced(), 23);
    assert_eq!(forwarder.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_holds_bounded_queries_and_sockets() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let upstream = silent.local_addr().expect("addr");
    let config = ForwardConfig {
        max_in_flight: 64,
        max_in_flight_per_client: 16,
        ..forwarding_to(upstream)
    };
    let forwarder = Arc::new(Forwarder::with_config(vec![upstream], &config));
    let before = open_fds();
    let mut tasks = JoinSet::new();
    // 2000 distinct names from 200 clients (10 each, within the per-client share).
    for n in 0..2000u32 {
        let forwarder = forwarder.clone();
        let client: IpAddr = Ipv4Addr::from(0x0a12_0000 + n % 200).into();
        tasks.spawn(async move {
            let query = Query::query(name(&format!("n{n}.never.test.")), RecordType::A);
            forwarder.resolve(&query, client).await.map(|_| ())
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (in_flight, during) = (forwarder.in_flight(), open_fds());
    assert!(in_flight <= 64, "{in_flight} in flight");
    assert!(in_flight >= 32, "{in_flight}: the admitted ones are still waiting");
    // Unbounded, this would be ~2000 sockets; other tests in this binary
    // open a few dozen meanwhile.
    assert!(during < before + 64 + 150, "{before} fds before, {during} during");
    let (mut busy, mut failed) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        match outcome.expect("joined") {
            Err(ForwardError::Busy) => busy += 1,
            Err(ForwardError::Upstream { .. }) => failed += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(failed <= 64, "{failed}");
    assert_eq!(busy + failed, 2000);
    assert_eq!(forwarder.in_flight(), 0);

    // One client alone gets its share, no more.
    let mut tasks = JoinSet::new();
    let client: IpAddr = Ipv4Addr::new(10, 18, 0, 9).into();
    for n in 0..100u32 {
        let forwarder = forwarder.clone();
        tasks.spawn(async move {
            let query = Query::query(name(&format!("c{n}.never.test.")), RecordType::A);
            forwarder.resolve(&query, client).await.map(|_| ())
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(forwarder.in_flight(), 16);
    let mut client_busy = 0;
    while let Some(outcome) = tasks.join_next().await {
        if let Err(ForwardError::ClientBusy) = outcome.expect("joined") {
            client_busy += 1;
        }
    }
    assert_eq!(client_busy, 84);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_in_flight_share_is_servfail_at_once_and_counted() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let upstream = silent.local_addr().expect("addr");
    let config = DnsConfig {
        forward: ForwardConfig {
            max_in_flight_per_client: 2,
            ..forwarding_to(upstream)
        },
        ..DnsConfig::default()
    };
    let (server, addr) = start_with(config).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    for n in 0..10 {
        let bytes = request(&format!("q{n}.never.test."), RecordType::A, Some(1232));
        socket.send_to(&bytes, addr).await.expect("send");
    }
    let mut buf = vec![0u8; 4096];
    let mut refused = 0;
    while refused < 8 {
        let n = tokio::time::timeout(Duration::from_millis(700), socket.recv(&mut buf))
            .await
            .expect("refusals come at once, before the upstream timeout")
            .expect("recv");
        let m = Message::from_vec(&buf[..n]).expect("parses");
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        let text = ede_text(&m).expect("EDE");
        assert!(text.contains("too many"), "{text}");
        refused += 1;
    }
    assert_eq!(server.stats().forward_busy(), 8);
    server.shutdown().await;
}
