//! Shared by the fuzz target (`dns/fuzz`) and its corpus replay test
//! (`tests/fuzz_corpus.rs`): a handler over a small directory, and one call
//! that runs raw bytes through hickory's request parsing and the handler
//! over UDP and TCP, checking what comes back. Not for production use.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_server::net::xfer::Protocol;

use crate::capture::handle_bytes;
use crate::directory::{NodeId, RttEstimate};
use crate::instance::{Instance, InstanceKey, InstanceSpec, NamedPort, Protocol as PortProtocol};
use crate::handler::{GroveHandler, MAX_UDP_PAYLOAD};
use crate::{DnsConfig, MemoryDirectory};

/// A handler (forwarding off) over `ms2` in two apps and `big` with 120
/// instances, so that ambiguity and truncation are reachable.
pub fn fuzz_handler() -> GroveHandler {
    let dir = MemoryDirectory::new(NodeId::new("local"));
    let add = |service: &str, app: &str, number: u32, node: &str| {
        let key = InstanceKey::new(service, app, "prod", number).expect("valid names");
        let port = NamedPort::new("http", PortProtocol::Tcp, 8080).expect("valid port name");
        let mut spec = InstanceSpec::new(key)
            .with_ipv4(Ipv4Addr::new(10, 30, (number >> 8) as u8, number as u8))
            .with_port(port);
        if number % 2 == 0 {
            spec = spec.with_ipv6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, number as u16));
        }
        let mut instance = Instance::new(spec, NodeId::new(node));
        instance.healthy = number != 3;
        dir.register(instance).expect("valid instance");
    };
    for n in 0..4 {
        add("ms2", "web", n, if n % 2 == 0 { "a" } else { "b" });
    }
    add("ms2", "shop", 0, "a");
    for n in 0..120 {
        add("big", "web", n, "b");
    }
    dir.set_rtt(&NodeId::new("a"), Some(RttEstimate::measured(Duration::from_millis(2))));
    // The fuzzed requests come from 10.18.0.5: allowed, and a rate limit
    // the corpus cannot reach, so every input gets past the front door.
    let config = DnsConfig {
        forward: crate::ForwardConfig {
            enabled: false,
            ..crate::ForwardConfig::default()
        },
        rate_limit: crate::RateLimitConfig {
            qps: 0,
            ..crate::RateLimitConfig::default()
        },
        ..DnsConfig::default()
    }
    .with_allow_from(["10.18.0.0/16".parse().expect("prefix")]);
    GroveHandler::new(&config, Arc::new(dir), None)
}

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Runs `bytes` as a request over UDP and over TCP. Panics if a response
/// does not parse, has another ID, or exceeds the UDP size limit.
pub fn run_request(handler: &GroveHandler, bytes: &[u8]) {
    RUNTIME.with(|cell| {
        let mut slot = cell.borrow_mut();
        let rt = slot.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
        });
        let src = SocketAddr::from(([10, 18, 0, 5], 5353));
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            let Some(out) = rt.block_on(handle_bytes(handler, bytes, src, protocol)) else {
                continue;
            };
            if protocol == Protocol::Udp {
                assert!(
                    out.len() <= usize::from(MAX_UDP_PAYLOAD),
                    "UDP response of {} bytes",
                    out.len()
                );
            }
            let response = Message::from_vec(&out).expect("our response parses");
            assert_eq!(&out[..2], &bytes[..2], "response ID");
            let _ = response;
        }
    });
}
