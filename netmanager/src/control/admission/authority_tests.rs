//! The authority's decisions: tokens, names, keys, subnets, revocation.

use super::*;
use crate::control::admission::tokens::TokenSpec;

fn authority() -> (Authority, String) {
    let mut authority = Authority::new(Keypair::generate_ed25519(), SubnetPool::default(), AuthorityState::default()).expect("authority");
    let (token, _) = authority.tokens_mut().create(&TokenSpec { ttl_secs: None, uses: Some(3), note: String::new() }, 0).expect("token");
    (authority, token)
}

fn join(token: &str, name: &str, key: u8) -> JoinRequest {
    JoinRequest { token: token.to_owned(), name: name.to_owned(), wg_public_key: [key; 32] }
}

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("net")
}

#[test]
fn grants_bind_subnet_name_and_key_to_the_identity() {
    let (mut auth, token) = authority();
    let me = auth.admit_self("auth", [1; 32], 0).expect("self");
    let node = PeerId::random();
    let grant = auth.admit(&node, &join(&token, "edge-1", 2), 10).expect("admit");
    let rules = GrantRules::default();
    let info = verify_grant(&grant, &auth.peer_id(), &node, &rules).expect("verify");
    assert_eq!((info.subnet, info.name.as_str(), info.wg_public_key), (net("10.18.0.64/26"), "edge-1", [2; 32]));
    assert_eq!(verify_grant(&me, &auth.peer_id(), &auth.peer_id(), &rules).expect("self").subnet, net("10.18.0.0/26"));
    // The same node again: same grant, no token use burnt.
    let again = auth.admit(&node, &join(&token, "edge-1", 2), 20).expect("re-admit");
    assert_eq!(verify_grant(&again, &auth.peer_id(), &node, &rules).expect("v").serial, info.serial);
    assert_eq!(auth.tokens().list()[0].used, 1);
}

#[test]
fn names_and_keys_are_unique_and_tokens_are_counted() {
    let (mut auth, token) = authority();
    auth.admit(&PeerId::random(), &join(&token, "edge-1", 2), 0).expect("first");
    assert_eq!(auth.admit(&PeerId::random(), &join(&token, "edge-1", 3), 0), Err(Refusal::NameTaken { name: "edge-1".into() }));
    assert_eq!(auth.admit(&PeerId::random(), &join(&token, "edge-2", 2), 0), Err(Refusal::KeyTaken));
    assert_eq!(auth.admit(&PeerId::random(), &join(&token, "Edge_3", 4), 0), Err(Refusal::BadName));
    auth.admit(&PeerId::random(), &join(&token, "edge-2", 3), 0).expect("second");
    auth.admit(&PeerId::random(), &join(&token, "edge-3", 4), 0).expect("third");
    // F10: a token with three uses admits three nodes, not a thousand.
    assert_eq!(auth.admit(&PeerId::random(), &join(&token, "edge-4", 5), 0), Err(Refusal::Token));
    assert_eq!(auth.admit(&PeerId::random(), &join("", "edge-4", 5), 0), Err(Refusal::NoToken));
}

#[test]
fn revocation_frees_name_and_subnet_and_is_signed() {
    let (mut auth, token) = authority();
    let node = PeerId::random();
    let grant = auth.admit(&node, &join(&token, "edge-1", 2), 0).expect("admit");
    let serial = verify_grant(&grant, &auth.peer_id(), &node, &GrantRules::default()).expect("v").serial;
    let (entry, revocation) = auth.revoke("edge-1").expect("revoke");
    assert_eq!(entry.node, node);
    let revoked = revocation.verify().expect("signed");
    assert_eq!((revoked.signer, revoked.value.serial), (auth.peer_id(), serial));
    let other = PeerId::random();
    let regrant = auth.admit(&other, &join(&token, "edge-1", 2), 0).expect("name free again");
    let info = verify_grant(&regrant, &auth.peer_id(), &other, &GrantRules::default()).expect("v");
    assert!(info.serial > serial, "a later grant of the name has a higher serial");
    assert_eq!(info.subnet, net("10.18.0.0/26"), "the subnet was released");
    assert!(matches!(auth.revoke("nobody"), Err(AdmissionError::NoSuchMember(_))));
    assert!(auth.revoke(&auth.peer_id().to_string()).is_err());
}

#[test]
fn state_round_trips_and_contradictions_are_refused() {
    let (mut auth, token) = authority();
    auth.admit(&PeerId::random(), &join(&token, "edge-1", 2), 0).expect("admit");
    auth.revoke("edge-1").expect("revoke");
    auth.admit(&PeerId::random(), &join(&token, "edge-2", 3), 0).expect("admit");
    let state = auth.state();
    let json = serde_json::to_string(&state).expect("json");
    let back: AuthorityState = serde_json::from_str(&json).expect("back");
    assert_eq!(back, state);
    let restored = Authority::new(Keypair::generate_ed25519(), SubnetPool::default(), back.clone()).expect("restore");
    assert_eq!(restored.grants().count(), 1);
    assert_eq!(restored.revocations().len(), 1);
    let mut twice = back;
    let mut dup = twice.grants[0].clone();
    dup.node = PeerId::random();
    dup.subnet = net("10.18.1.0/26");
    twice.grants.push(dup);
    assert!(Authority::new(Keypair::generate_ed25519(), SubnetPool::default(), twice).is_err());
}

#[test]
fn members_refuse_grants_outside_the_address_plan() {
    // F9: a validly signed grant for 0.0.0.0/1 would become a kernel route.
    let authority = Keypair::generate_ed25519();
    let node = PeerId::random();
    let rules = GrantRules::default();
    for subnet in ["0.0.0.0/1", "10.18.0.0/16", "10.18.0.0/25", "192.168.1.0/26", "10.18.0.32/26"] {
        let grant = SubnetGrant {
            node: node.to_bytes(),
            subnet: subnet.parse().expect("net"),
            name: "n".into(),
            wg_public_key: [1; 32],
            serial: 1,
            issued_unix_ms: 0,
        };
        let signed = Signed::sign(&grant, &authority).expect("sign");
        let err = verify_grant(&signed, &authority.public().to_peer_id(), &node, &rules);
        assert!(matches!(err, Err(AdmissionError::GrantShape { .. })), "{subnet}: {err:?}");
    }
    let forged = SubnetGrant { node: node.to_bytes(), subnet: net("10.18.0.0/26"), name: "n".into(), wg_public_key: [1; 32], serial: 1, issued_unix_ms: 0 };
    let forged = Signed::sign(&forged, &Keypair::generate_ed25519()).expect("sign");
    assert!(matches!(verify_grant(&forged, &authority.public().to_peer_id(), &node, &rules), Err(AdmissionError::NotAuthority { .. })));
    let signed = Signed::sign(&SubnetGrant { node: node.to_bytes(), subnet: net("10.18.0.0/26"), name: "n".into(), wg_public_key: [1; 32], serial: 1, issued_unix_ms: 0 }, &authority).expect("sign");
    assert!(matches!(verify_grant(&signed, &authority.public().to_peer_id(), &PeerId::random(), &rules), Err(AdmissionError::WrongNode { .. })));
}
