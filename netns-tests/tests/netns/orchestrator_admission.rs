//! The cluster as its site's admission authority: when a cluster registers,
//! the root (beside the mesh authority) delegates it a block; a worker node
//! joins with a token from the cluster's netmanager, gets a /26 of that
//! block signed by the cluster, and every member — the root's node too —
//! believes it through the chain root → cluster → node. An instance on it
//! is reached through the mesh by `closest`; removing the cluster on the
//! authority removes the nodes it admitted from every view.

use std::time::Duration;

use netns_tests::orchestra::{direct_nodes, echo_service, frankfurt, munich, sla, wait_for, Orchestra, Role::*, ECHO_PORT};

use super::support::need_root;

#[test]
fn orchestrator_cluster_admits_its_site_and_the_chain_is_believed_everywhere() {
    need_root();
    let o = Orchestra::builder()
        .node("fra", frankfurt(), &[Root, Cluster])
        .node("muc", munich(), &[Cluster])
        .node("mucw", munich(), &[Worker])
        .admitted_by_cluster("mucw")
        .build()
        .unwrap_or_else(|e| panic!("orchestra: {e}"));
    let (muc, mucw) = (o.name("muc"), o.name("mucw"));

    // The authority set a block aside for the Munich cluster; the worker's
    // subnet lies in it, though the authority never saw its token.
    let (status, delegations) = o.node("fra").api("GET", "/v1/delegations", None).expect("delegations");
    assert_eq!(status, 200, "{delegations}");
    let block: ipnet::Ipv4Net = delegations
        .as_array()
        .and_then(|all| all.iter().find(|d| d["cluster"].as_str() == Some(o.peer_id("muc"))))
        .and_then(|d| d["block"].as_str())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no block delegated to {muc}: {delegations}"));
    let subnet = o.subnet("mucw").expect("the worker's subnet");
    assert!(block.contains(&subnet), "{mucw} got {subnet}, outside the block {block} delegated to {muc}");
    let (_, grants) = o.node("fra").api("GET", "/v1/grants", None).expect("grants");
    assert!(!grants.to_string().contains(&mucw), "the authority granted {mucw} itself: {grants}");
    let (_, tokens) = o.node("muc").api("GET", "/v1/tokens", None).expect("tokens");
    assert!(tokens.as_array().is_some_and(|t| t.iter().any(|t| t["used"] == 1)), "the cluster's token was not used: {tokens}");

    // Every member believes the chain: the worker is alive everywhere.
    for key in ["fra", "muc"] {
        assert!(o.node(key).members_in("alive").contains(&mucw), "{key} does not take {mucw} for a member");
    }

    // Work lands on it and is reached through the mesh from Frankfurt.
    let (status, body) = o.deploy(&sla("site", &[echo_service("web", 1, direct_nodes(&[&mucw]))]));
    assert_eq!(status, 201, "{body}");
    o.wait_running("web.site.prod", 1, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    let address = o.running("web.site.prod")[0].address.expect("address");
    assert!(subnet.contains(&address), "{address} not in {subnet}");
    o.wait_closest("fra", "closest.web.site.prod.grove", Duration::from_secs(5), |a| a == [address])
        .unwrap_or_else(|got| panic!("closest from fra: {got:?}, want {address}"));
    let answer = o.http_get("fra", address, ECHO_PORT).unwrap_or_else(|e| panic!("HTTP through the mesh: {e}"));
    assert!(!answer.is_empty());

    // The authority removes the cluster: the node it admitted goes with it.
    let (status, body) = o.node("fra").api("DELETE", &format!("/v1/members/{muc}"), None).expect("remove");
    assert_eq!(status, 200, "{body}");
    let gone = wait_for(Duration::from_secs(5), || {
        let seen = o.node("fra").members_in("alive");
        (!seen.contains(&muc) && !seen.contains(&mucw)).then_some(())
    });
    assert!(gone.is_some(), "after removing {muc}, fra still lists {:?}", o.node("fra").members_in("alive"));
}
