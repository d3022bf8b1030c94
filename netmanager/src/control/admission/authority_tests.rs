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
    let grant = auth.admit(&node, &join(&token, "edge-1", 2), 10).expect("admit").grant;
    let rules = GrantRules::default();
    let info = verify_grant(&grant, None, &auth.peer_id(), &node, &rules).expect("verify");
    assert_eq!((info.subnet, info.name.as_str(), info.wg_public_key), (net("10.18.0.64/26"), "edge-1", [2; 32]));
    assert_eq!(verify_grant(&me, None, &auth.peer_id(), &auth.peer_id(), &rules).expect("self").subnet, net("10.18.0.0/26"));
    // The same node again: same grant, no token use burnt.
    let again = auth.admit(&node, &join(&token, "edge-1", 2), 20).expect("re-admit").grant;
    assert_eq!(verify_grant(&again, None, &auth.peer_id(), &node, &rules).expect("v").serial, info.serial);
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
    let grant = auth.admit(&node, &join(&token, "edge-1", 2), 0).expect("admit").grant;
    let serial = verify_grant(&grant, None, &auth.peer_id(), &node, &GrantRules::default()).expect("v").serial;
    let (entry, revocation) = auth.revoke("edge-1").expect("revoke");
    assert_eq!(entry.node, node);
    let revoked = revocation.verify().expect("signed");
    assert_eq!((revoked.signer, revoked.value.serial), (auth.peer_id(), serial));
    let other = PeerId::random();
    let regrant = auth.admit(&other, &join(&token, "edge-1", 2), 0).expect("name free again");
    let info = verify_grant(&regrant.grant, None, &auth.peer_id(), &other, &GrantRules::default()).expect("v");
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
        let err = verify_grant(&signed, None, &authority.public().to_peer_id(), &node, &rules);
        assert!(matches!(err, Err(AdmissionError::GrantShape { .. })), "{subnet}: {err:?}");
    }
    let forged = SubnetGrant { node: node.to_bytes(), subnet: net("10.18.0.0/26"), name: "n".into(), wg_public_key: [1; 32], serial: 1, issued_unix_ms: 0 };
    let forged = Signed::sign(&forged, &Keypair::generate_ed25519()).expect("sign");
    assert!(matches!(verify_grant(&forged, None, &authority.public().to_peer_id(), &node, &rules), Err(AdmissionError::NotAuthority { .. })));
    let signed = Signed::sign(&SubnetGrant { node: node.to_bytes(), subnet: net("10.18.0.0/26"), name: "n".into(), wg_public_key: [1; 32], serial: 1, issued_unix_ms: 0 }, &authority).expect("sign");
    assert!(matches!(verify_grant(&signed, None, &authority.public().to_peer_id(), &PeerId::random(), &rules), Err(AdmissionError::WrongNode { .. })));
}

/// The authority sets a block aside for a member and signs it; the block
/// is never granted again, survives a restart, and comes back when the
/// cluster is removed. A delegate admits into its block and hands the
/// delegation out with each grant, which verifies against the root's key.
#[test]
fn delegation_sets_a_block_aside_and_the_chain_verifies() {
    let (mut root, token) = authority();
    root.admit_self("root", [1; 32], 0).expect("self");
    let cluster_key = Keypair::generate_ed25519();
    let cluster = cluster_key.public().to_peer_id();
    root.admit(&cluster, &join(&token, "munich", 2), 0).expect("cluster joins");
    assert!(matches!(root.delegate("nobody", 22, 0), Err(AdmissionError::NotDelegable(_))));
    assert!(matches!(root.delegate("root", 22, 0), Err(AdmissionError::NotDelegable(_))), "not to itself");
    let (entry, signed) = root.delegate("munich", 22, 5).expect("delegate");
    assert_eq!(entry.block, net("10.18.4.0/22"), "the first free /22: the /26s granted so far lie in 10.18.0.0/22");
    let (again, _) = root.delegate(&cluster.to_string(), 24, 6).expect("again");
    assert_eq!((again.block, again.serial), (entry.block, entry.serial), "asked again: the same block");
    // No node subnet comes out of the block.
    let (many, _) = root.tokens_mut().create(&TokenSpec { ttl_secs: None, uses: Some(30), note: String::new() }, 0).expect("token");
    for i in 0..30u8 {
        root.admit(&PeerId::random(), &join(&many, &format!("n{i}"), 10 + i), 0).expect("admit");
    }
    assert!(root.grants().all(|g| !entry.block.contains(&g.subnet)), "a granted subnet lies in the delegated block");
    // Restart: the block stays set aside.
    let restored = Authority::new(Keypair::generate_ed25519(), SubnetPool::default(), root.state()).expect("restore");
    assert_eq!(restored.delegations().next().map(|d| d.block), Some(entry.block));

    // The delegate admits into its block; the grant verifies through the chain.
    let info = crate::control::admission::verify_delegation(&signed, &root.peer_id(), &GrantRules::default()).expect("delegation");
    let mut delegate = Authority::delegate_of(cluster_key, signed.clone(), info.block, 26, AuthorityState::default()).expect("delegate");
    let (site_token, _) = delegate.tokens_mut().create(&TokenSpec { ttl_secs: None, uses: Some(1), note: String::new() }, 0).expect("token");
    let worker = PeerId::random();
    let granted = delegate.admit(&worker, &join(&site_token, "muc-w1", 40), 0).expect("admit");
    assert_eq!(granted.delegation.as_ref(), Some(&signed));
    let rules = GrantRules::default();
    let got = verify_grant(&granted.grant, granted.delegation.as_ref(), &root.peer_id(), &worker, &rules).expect("chain");
    let cluster_serial = root.grants().find(|g| g.node == cluster).map(|g| g.serial);
    assert_eq!((got.issuer, got.subnet, got.delegate_grant_serial), (cluster, net("10.18.4.0/26"), cluster_serial));
    assert!(verify_grant(&granted.grant, None, &root.peer_id(), &worker, &rules).is_err(), "without the delegation");
    assert!(matches!(delegate.delegate("muc-w1", 24, 0), Err(AdmissionError::NotDelegable(_))), "a delegate does not delegate further");

    // Removing the cluster frees its block.
    root.revoke("munich").expect("remove");
    assert_eq!(root.delegations().count(), 0);
    assert_eq!(root.pool().block_of(&cluster), None);
}
