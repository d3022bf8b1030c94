//! The harness's own parsing and documents.

use super::sla::*;
use super::wire::parse_response;

#[test]
fn responses_parse_with_length_and_chunks() {
    let plain = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}";
    assert_eq!(parse_response(plain), Some((201, b"{}".to_vec())));
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    assert_eq!(parse_response(chunked), Some((200, b"abcde".to_vec())));
    let old = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhi\n";
    assert_eq!(parse_response(old), Some((200, b"hi\n".to_vec())));
    assert_eq!(parse_response(b"garbage"), None);
}

#[test]
fn sla_documents_are_read_by_the_orchestrator() {
    let doc = sla("shop", &[microservice("web", "/bin/true", &["-x"], 2, geo(48.14, 11.58, 50.0))]);
    let spec = orchestrator::sla::read(doc.as_bytes()).expect("a valid SLA");
    assert_eq!(spec.apps[0].services[0].instances, 2);
    for constraints in [direct_nodes(&["a", "b"]), direct_cluster("c"), latency_area("muc-1", 5.0), latency_at(48.1, 11.5, 9.0), anywhere()] {
        let doc = sla("shop", &[microservice("web", "/bin/true", &[], 1, constraints.clone())]);
        orchestrator::sla::read(doc.as_bytes()).unwrap_or_else(|e| panic!("{constraints}: {e}"));
    }
}
