//! The handler through an in-memory response handler: request bytes in,
//! response bytes out, one test per outcome.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::EdnsCode;
use hickory_proto::rr::{RData, RecordType};
use hickory_server::net::xfer::Protocol;

use super::*;
use crate::capture::handle_bytes;
use crate::directory::{NodeId, RttEstimate};
use crate::instance::{Instance, InstanceKey, InstanceSpec, NamedPort, Protocol as PortProtocol};

fn instance(service: &str, app: &str, number: u32, node: &str) -> Instance {
    let key = InstanceKey::new(service, app, "prod", number).expect("valid names");
    let spec = InstanceSpec::new(key)
        .with_ipv4(Ipv4Addr::new(10, 30, (number >> 8) as u8, number as u8))
        .with_port(NamedPort::new("http", PortProtocol::Tcp, 8080).expect("valid port"));
    Instance::new(spec, NodeId::new(node))
}

/// `ms2` in web/prod on n-near (instance 0, also IPv6) and n-far (1);
/// `db` in web/prod and shop/prod (ambiguous short name); `big` with 100
/// instances; instance 2 of ms2 unhealthy.
fn directory() -> Arc<MemoryDirectory> {
    let dir = MemoryDirectory::new(NodeId::new("local"));
    let mut near = instance("ms2", "web", 0, "n-near");
    near.spec.ipv6 = Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
    dir.register(near).expect("register");
    dir.register(instance("ms2", "web", 1, "n-far")).expect("register");
    let mut sick = instance("ms2", "web", 2, "n-near");
    sick.healthy = false;
    dir.register(sick).expect("register");
    dir.register(instance("db", "web", 0, "n-near")).expect("register");
    dir.register(instance("db", "shop", 0, "n-near")).expect("register");
    for n in 0..100 {
        dir.register(instance("big", "web", n, "n-far")).expect("register");
    }
    dir.set_rtt(
        &NodeId::new("n-near"),
        Some(RttEstimate::measured(Duration::from_millis(2))),
    );
    dir.set_rtt(
        &NodeId::new("n-far"),
        Some(RttEstimate::measured(Duration::from_millis(80))),
    );
    Arc::new(dir)
}

fn handler(forward: bool) -> GroveHandler {
    let forwarder = forward.then(|| Arc::new(Forwarder::new(Vec::new())));
    // `run` asks from 10.18.0.5, a workload: allowed as netmanager allows it.
    let config = DnsConfig::default().with_allow_from(["10.18.0.0/16".parse().expect("prefix")]);
    GroveHandler::new(&config, directory(), forwarder)
}

fn request(name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if let Some(payload) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        m.set_edns(e);
    }
    m
}

fn run(h: &GroveHandler, m: &Message, protocol: Protocol) -> Message {
    let bytes = m.to_vec().expect("encode");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let src: SocketAddr = "10.18.0.5:5353".parse().expect("addr");
    let out = rt.block_on(handle_bytes(h, &bytes, src, protocol)).expect("a response");
    Message::from_vec(&out).expect("response parses")
}

fn ask(name: &str, qtype: RecordType) -> Message {
    run(&handler(false), &request(name, qtype, Some(1232)), Protocol::Udp)
}

fn soa_minimum(m: &Message) -> u32 {
    match &m.authorities[..] {
        [r] => match &r.data {
            RData::SOA(soa) => soa.minimum,
            other => panic!("not SOA: {other:?}"),
        },
        other => panic!("authorities {other:?}"),
    }
}

fn ede(m: &Message) -> Option<String> {
    let option = m.edns.as_ref()?.option(EdnsCode::from(EDE_OPTION_CODE))?;
    let hickory_proto::rr::rdata::opt::EdnsOption::Unknown(_, bytes) = option else {
        return None;
    };
    Some(String::from_utf8_lossy(&bytes[2..]).into_owned())
}

#[test]
fn closest_answers_one_a_record_with_the_moving_ttl() {
    let m = ask("closest.ms2.web.grove.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(m.metadata.id, 4242);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data, RData::A(Ipv4Addr::new(10, 30, 0, 0).into()));
    assert_eq!(m.answers[0].ttl, 2);
    assert!(m.edns.is_some(), "EDNS is echoed");
}

#[test]
fn names_are_case_insensitive_and_keep_the_askers_case() {
    let m = ask("CLOSEST.Ms2.WEB.Grove.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].name.to_ascii(), "CLOSEST.Ms2.WEB.Grove.");
}

#[test]
fn all_answers_every_healthy_instance_and_instance_n_one() {
    let m = ask("all.ms2.web.grove.", RecordType::A);
    assert_eq!(m.answers.len(), 2, "the unhealthy instance-2 is left out");
    assert_eq!(m.answers[0].ttl, 30);
    let m = ask("instance-1.ms2.web.grove.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data, RData::A(Ipv4Addr::new(10, 30, 0, 1).into()));
}

#[test]
fn aaaa_where_there_is_one_nodata_where_not() {
    let m = ask("instance-0.ms2.web.grove.", RecordType::AAAA);
    assert_eq!(m.answers.len(), 1);
    let m = ask("instance-1.ms2.web.grove.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(soa_minimum(&m), 5);
    assert_eq!(m.authorities[0].ttl, 5);
}

#[test]
fn srv_targets_the_instance_with_its_address_in_additionals() {
    let m = ask("_http._tcp.closest.ms2.web.grove.", RecordType::SRV);
    assert_eq!(m.answers.len(), 1);
    let RData::SRV(srv) = &m.answers[0].data else {
        panic!("{:?}", m.answers)
    };
    assert_eq!(srv.port, 8080);
    assert_eq!(srv.target.to_ascii(), "instance-0.ms2.web.prod.grove.");
    assert!(m
        .additionals
        .iter()
        .any(|r| r.name == srv.target && r.record_type() == RecordType::A));
    // The target resolves to that instance.
    let t = ask("instance-0.ms2.web.prod.grove.", RecordType::A);
    assert_eq!(t.answers[0].data, RData::A(Ipv4Addr::new(10, 30, 0, 0).into()));
    // Unknown port: NXDOMAIN.
    let m = ask("_grpc._tcp.closest.ms2.web.grove.", RecordType::SRV);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn explain_answers_txt() {
    let m = ask("explain.closest.ms2.web.grove.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let RData::TXT(txt) = &m.answers[0].data else {
        panic!("{:?}", m.answers)
    };
    let text = txt.to_string();
    assert!(text.contains("instance-0"), "{text}");
    assert_eq!(m.answers[0].ttl, 0);
    // An explanation of a miss is still an explanation.
    let m = ask("explain.closest.nope.grove.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn unknown_services_are_nxdomain_with_soa() {
    for name in [
        "closest.nope.grove.",
        "instance-9.ms2.web.grove.",
        "closest.ms2.cam.grove.",
        "bogus.grove.",
    ] {
        let m = ask(name, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert_eq!(soa_minimum(&m), 5, "{name}");
        assert!(m.metadata.authoritative);
    }
}

#[test]
fn existing_names_without_the_type_are_nodata() {
    for (name, qtype) in [
        ("ms2.web.grove.", RecordType::A), // empty non-terminal above closest.ms2.web.grove
        ("web.prod.svc.grove.", RecordType::A), // search-domain skeleton
        ("grove.", RecordType::A),         // apex
        ("closest.ms2.web.grove.", RecordType::MX),
        ("closest.ms2.web.grove.", RecordType::TXT),
    ] {
        let m = ask(name, qtype);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(m.answers.is_empty(), "{name}");
        assert_eq!(soa_minimum(&m), 5, "{name}");
    }
}

#[test]
fn apex_answers_soa_and_ns() {
    let m = ask("grove.", RecordType::SOA);
    assert!(matches!(m.answers[0].data, RData::SOA(_)));
    let m = ask("grove.", RecordType::NS);
    assert!(matches!(m.answers[0].data, RData::NS(_)));
}

#[test]
fn ambiguous_names_are_refused_with_an_extended_error() {
    let m = ask("closest.db.grove.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());
    let text = ede(&m).expect("EDE");
    assert!(text.contains("shop.prod") && text.contains("web.prod"), "{text}");
    let m = ask("closest.db.grove.", RecordType::TXT);
    assert_eq!(m.answers.len(), 1);
    // Without EDNS: no OPT, so no EDE, still REFUSED.
    let m = run(
        &handler(false),
        &request("closest.db.grove.", RecordType::A, None),
        Protocol::Udp,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.edns.is_none());
    // The asker's app (search suffix) settles it.
    let m = ask("closest.db.shop.prod.svc.grove.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn outside_names_are_refused_without_forwarding() {
    let m = ask("example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.recursion_available);
}

#[test]
fn forwarding_without_upstreams_is_servfail_with_ede() {
    let m = run(
        &handler(true),
        &request("example.com.", RecordType::A, Some(1232)),
        Protocol::Udp,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(m.metadata.recursion_available);
    assert!(ede(&m).expect("EDE").contains("no upstream"));
}

#[test]
fn other_opcodes_several_questions_and_new_edns_versions() {
    let mut m = request("closest.ms2.web.grove.", RecordType::A, None);
    m.metadata.op_code = OpCode::Update;
    assert_eq!(
        run(&handler(false), &m, Protocol::Udp).metadata.response_code,
        ResponseCode::NotImp
    );

    let mut m = request("closest.ms2.web.grove.", RecordType::A, None);
    m.add_query(Query::query(Name::from_ascii("grove.").expect("name"), RecordType::SOA));
    assert_eq!(
        run(&handler(false), &m, Protocol::Udp).metadata.response_code,
        ResponseCode::FormErr
    );

    let mut m = request("closest.ms2.web.grove.", RecordType::A, None);
    let mut e = Edns::new();
    e.set_version(1);
    m.set_edns(e);
    // BADVERS is 16 on the wire; hickory decodes 16 as BADSIG, its TSIG twin.
    let code = run(&handler(false), &m, Protocol::Udp).metadata.response_code;
    assert_eq!(u16::from(code), u16::from(ResponseCode::BADVERS));
}

#[test]
fn big_answers_truncate_over_udp_and_are_whole_over_tcp() {
    let h = handler(false);
    let m = run(&h, &request("all.big.web.grove.", RecordType::A, None), Protocol::Udp);
    assert!(m.metadata.truncation);
    assert!(m.answers.len() < 100);
    let m = run(
        &h,
        &request("all.big.web.grove.", RecordType::A, Some(4096)),
        Protocol::Udp,
    );
    assert!(
        m.metadata.truncation,
        "capped at {MAX_UDP_PAYLOAD} whatever the client offers"
    );
    assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(MAX_UDP_PAYLOAD));
    let m = run(&h, &request("all.big.web.grove.", RecordType::A, None), Protocol::Tcp);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
}

#[test]
fn malformed_bytes_get_no_response_or_formerr() {
    let h = handler(false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let src: SocketAddr = "10.18.0.5:5353".parse().expect("addr");
    // Header only, claiming one question: does not parse.
    let truncated = [0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    // A question whose name is a compression pointer to itself.
    let looped = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1,
    ];
    for bytes in [&[][..], &[1, 2, 3][..], &truncated[..], &looped[..]] {
        assert!(rt.block_on(handle_bytes(&h, bytes, src, Protocol::Udp)).is_none());
    }
}

#[test]
fn queries_are_counted_by_kind_and_rcode() {
    use crate::stats::{QueryCount, QueryKind, RcodeClass};

    let h = handler(false);
    let stats = h.stats();
    let send = |m: &Message| run(&h, m, Protocol::Udp).metadata.response_code;
    let ask = |name: &str| send(&request(name, RecordType::A, Some(1232)));

    assert_eq!(ask("closest.ms2.web.grove."), ResponseCode::NoError);
    assert_eq!(stats.count(QueryKind::Closest, RcodeClass::NoError), 1);
    assert_eq!(ask("closest.nope.grove."), ResponseCode::NXDomain);
    assert_eq!(stats.count(QueryKind::Closest, RcodeClass::NxDomain), 1);
    assert_eq!(ask("bogus.grove."), ResponseCode::NXDomain);
    assert_eq!(ask("example.com."), ResponseCode::Refused);
    assert_eq!(
        send(&request("explain.rr.ms2.web.grove.", RecordType::TXT, None)),
        ResponseCode::NoError
    );
    // Malformed: two questions (FORMERR) and an UPDATE (NOTIMP).
    let mut two = request("closest.ms2.web.grove.", RecordType::A, None);
    two.add_query(Query::query(Name::from_ascii("grove.").expect("name"), RecordType::SOA));
    assert_eq!(send(&two), ResponseCode::FormErr);
    assert_eq!(stats.count(QueryKind::Malformed, RcodeClass::FormErr), 1);
    let mut update = request("closest.ms2.web.grove.", RecordType::A, None);
    update.metadata.op_code = OpCode::Update;
    assert_eq!(send(&update), ResponseCode::NotImp);

    let count = |kind, rcode, count| QueryCount { kind, rcode, count };
    assert_eq!(
        stats.snapshot(),
        vec![
            count("closest", "NOERROR", 1),
            count("closest", "NXDOMAIN", 1),
            count("explain", "NOERROR", 1),
            count("other_in_zone", "NXDOMAIN", 1),
            count("forwarded", "REFUSED", 1),
            count("malformed", "FORMERR", 1),
            count("malformed", "NOTIMP", 1),
        ]
    );
    assert_eq!((stats.truncated(), stats.unhealthy_served()), (0, 0));
}

#[test]
fn truncated_and_unhealthy_answers_are_counted() {
    let h = handler(false);
    let stats = h.stats();
    run(&h, &request("all.big.web.grove.", RecordType::A, None), Protocol::Udp);
    run(&h, &request("all.big.web.grove.", RecordType::A, None), Protocol::Tcp);
    assert_eq!(stats.truncated(), 1, "only the UDP answer is cut");
    // instance-2 of ms2 is unhealthy and served (serve_unhealthy is on);
    // its explanation and a NODATA for it serve no instance.
    run(&h, &request("instance-2.ms2.web.grove.", RecordType::A, None), Protocol::Udp);
    run(&h, &request("instance-2.ms2.web.grove.", RecordType::MX, None), Protocol::Udp);
    run(
        &h,
        &request("explain.instance-2.ms2.web.grove.", RecordType::TXT, None),
        Protocol::Udp,
    );
    assert_eq!(stats.unhealthy_served(), 1);
}
