//! Pure tests of the answer layer (the handler tests cover each outcome on
//! the wire).

use std::net::Ipv4Addr;

use super::*;
use crate::directory::NodeId;

#[test]
fn one_rcode_per_disposition() {
    assert_eq!(rcode(Disposition::Records), ResponseCode::NoError);
    assert_eq!(rcode(Disposition::NoData), ResponseCode::NoError);
    assert_eq!(rcode(Disposition::NxDomain), ResponseCode::NXDomain);
    assert_eq!(rcode(Disposition::Ambiguous), ResponseCode::Refused);
    assert_eq!(rcode(Disposition::FormatError), ResponseCode::FormErr);
    assert_eq!(rcode(Disposition::NotImplemented), ResponseCode::NotImp);
    assert_eq!(rcode(Disposition::ServerFailure), ResponseCode::ServFail);
}

#[test]
fn soa_minimum_is_the_negative_ttl() {
    let ttl = TtlConfig {
        negative_secs: 9,
        ..TtlConfig::default()
    };
    let zone = ZoneRecords::new(&Zone::new("edge.example").expect("zone"), &ttl);
    let nx = zone.nx_domain();
    assert_eq!(nx.disposition, Disposition::NxDomain);
    let RData::SOA(soa) = &nx.authorities[0].data else {
        panic!("SOA")
    };
    assert_eq!((soa.minimum, nx.authorities[0].ttl), (9, 9));
    assert_eq!(zone.origin().to_ascii(), "edge.example.");
    assert_eq!(zone.apex(RecordType::ANY).answers.len(), 2);
}

#[test]
fn instance_names_are_fully_qualified() {
    let key = crate::InstanceKey::new("ms2", "web", "prod", 7).expect("key");
    let spec = crate::InstanceSpec::new(key).with_ipv4(Ipv4Addr::LOCALHOST);
    let instance = Instance::new(spec, NodeId::new("n"));
    let name = instance_name(&instance, &zone_name(&Zone::default())).expect("name");
    assert_eq!(name.to_ascii(), "instance-7.ms2.web.prod.grove.");
}

#[test]
fn ede_payload_is_code_then_text() {
    let e = ExtendedError {
        info_code: 23,
        text: "x".into(),
    };
    assert_eq!(e.payload(), vec![0, 23, b'x']);
}
