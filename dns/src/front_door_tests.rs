//! The handler's front door (allow-list, rate limit) and response bounds
//! (RFC 8482 ANY), through the in-memory response handler. Apex questions
//! only, so that these tests need no instances in the directory.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{RData, RecordType};
use hickory_server::net::xfer::Protocol;

use super::*;
use crate::capture::handle_bytes;
use crate::config::RateLimitConfig;
use crate::directory::NodeId;

fn handler(config: &DnsConfig) -> GroveHandler {
    let directory = Arc::new(MemoryDirectory::new(NodeId::new("local")));
    GroveHandler::new(config, directory, None)
}

fn request(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(77, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    m.to_vec().expect("encode")
}

/// The response to `grove. SOA` from `src`, if any.
fn ask_from(h: &GroveHandler, src: &str, protocol: Protocol) -> Option<Message> {
    ask_bytes(h, &request("grove.", RecordType::SOA), src, protocol)
}

fn ask_bytes(h: &GroveHandler, bytes: &[u8], src: &str, protocol: Protocol) -> Option<Message> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let src: SocketAddr = src.parse().expect("addr");
    let out = rt.block_on(handle_bytes(h, bytes, src, protocol))?;
    Some(Message::from_vec(&out).expect("response parses"))
}

#[test]
fn sources_outside_the_allow_list_are_dropped_over_udp_and_refused_over_tcp() {
    let h = handler(&DnsConfig::default());
    let stats = h.stats();
    for lan in ["192.168.1.20:40000", "10.18.0.5:40000", "[fd00::5]:40000"] {
        assert!(ask_from(&h, lan, Protocol::Udp).is_none(), "{lan}: no response");
        let m = ask_from(&h, lan, Protocol::Tcp).expect("a TCP response");
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{lan}");
        assert!(m.answers.is_empty());
    }
    assert_eq!(stats.not_allowed(), 6);
    assert!(stats.snapshot().is_empty(), "refused before the question is read");
    for local in ["127.0.0.1:40000", "127.0.0.153:40000", "[::1]:40000"] {
        let m = ask_from(&h, local, Protocol::Udp).expect("answered");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{local}");
        assert_eq!(m.answers.len(), 1);
    }
    // What the daemon adds is allowed too.
    let h = handler(&DnsConfig::default().with_allow_from(["10.18.0.0/16".parse().expect("prefix")]));
    assert!(ask_from(&h, "10.18.0.5:40000", Protocol::Udp).is_some());
    assert!(ask_from(&h, "192.168.1.20:40000", Protocol::Udp).is_none());
}

#[test]
fn over_the_rate_udp_is_dropped_with_every_slip_th_truncated_and_tcp_refused() {
    let config = DnsConfig {
        rate_limit: RateLimitConfig {
            qps: 1,
            burst: 3,
            clients: 64,
            slip: 2,
        },
        ..DnsConfig::default()
    };
    let h = handler(&config);
    let stats = h.stats();
    let (mut answered, mut truncated, mut silent) = (0, 0, 0);
    for _ in 0..10 {
        match ask_from(&h, "127.0.0.1:40000", Protocol::Udp) {
            Some(m) if m.metadata.truncation => {
                assert!(m.answers.is_empty());
                assert_eq!(m.queries.len(), 1, "the question is echoed");
                truncated += 1;
            }
            Some(m) => {
                assert_eq!(m.answers.len(), 1);
                answered += 1;
            }
            None => silent += 1,
        }
    }
    assert_eq!((answered, truncated, silent), (3, 3, 4));
    assert_eq!((stats.rate_limited(), stats.rate_slipped()), (7, 3));
    let m = ask_from(&h, "127.0.0.1:40000", Protocol::Tcp).expect("TCP gets an answer");
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // Another client is not held back by the first one's flood.
    let m = ask_from(&h, "127.0.0.2:40000", Protocol::Udp).expect("answered");
    assert_eq!(m.answers.len(), 1);
    // Off: no limit at all.
    let off = DnsConfig {
        rate_limit: RateLimitConfig {
            qps: 0,
            ..RateLimitConfig::default()
        },
        ..DnsConfig::default()
    };
    let h = handler(&off);
    assert!((0..50).all(|_| ask_from(&h, "127.0.0.1:40000", Protocol::Udp).is_some()));
}

#[test]
fn any_gets_one_rrset() {
    // RFC 8482: the apex has SOA and NS; ANY gets the SOA alone.
    let h = handler(&DnsConfig::default());
    let m = ask_bytes(
        &h,
        &request("grove.", RecordType::ANY),
        "127.0.0.1:40000",
        Protocol::Tcp,
    )
    .expect("answered");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1, "{:?}", m.answers);
    assert!(matches!(m.answers[0].data, RData::SOA(_)));
    assert!(m.additionals.is_empty());
}
