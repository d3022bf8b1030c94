//! Workload isolation (review F11) in real network namespaces, on the
//! testbed of `netns_testbed`; each test skips itself unless run as root:
//! `cargo test -p netmanager --lib workload::netns`.

use super::isolation;
use super::netns_testbed::*;
use super::{cleanup_stale, linux, names, Workloads};

#[test]
fn kernel_forwards_by_the_input_interface() {
    if skip_unless_root("kernel_forwards_by_the_input_interface") {
        return;
    }
    let t = Topology::new();
    t.set_node_forwarding(true);
    let mut workloads = t.setup();
    let wl = t.create(&mut workloads, 1);
    ip_in(
        &wl,
        &format!("addr add {SPOOFED}/32 dev {}", names::WORKLOAD_IFNAME),
    );
    // Without the rules and rp_filter, global forwarding is the hole F11
    // describes; this also shows the topology delivers when nothing stops it.
    in_netns(&t.node, || {
        isolation::remove().expect("remove rules");
        linux::write_conf("grove-br", "rp_filter", "0").expect("bridge rp_filter");
    });
    assert!(
        reaches(&t.lan, &wl, WORKLOAD),
        "global forwarding lets the LAN in"
    );
    assert!(
        delivered(&wl, Some(SPOOFED), &t.mesh, REMOTE, DELIVERY),
        "and a workload's spoofed source out"
    );

    // Global off resets every interface; then bridge and mesh only.
    t.set_node_forwarding(false);
    in_netns(&t.node, || {
        linux::write_conf("grove-br", "forwarding", "1").expect("bridge");
        linux::write_conf(MESH, "forwarding", "1").expect("mesh");
    });
    assert!(
        blocked(&t.lan, &wl, WORKLOAD),
        "entering on the LAN port: not forwarded"
    );
    assert!(reaches(&wl, &t.mesh, REMOTE), "bridge → mesh is forwarded");
    assert!(
        reaches(&t.mesh, &wl, WORKLOAD),
        "mesh → bridge is forwarded"
    );
    t.teardown(workloads);
}

/// Everything F11 asks, with the node's global forwarding as given.
fn isolation_holds(global_forward: bool) {
    let t = Topology::new();
    t.set_node_forwarding(global_forward);
    let global = if global_forward { "1" } else { "0" };
    let mut workloads = t.setup();
    let wl = t.create(&mut workloads, 1);
    ip_in(
        &wl,
        &format!("addr add {SPOOFED}/32 dev {}", names::WORKLOAD_IFNAME),
    );

    assert_eq!(
        t.node_conf("all", "forwarding"),
        global,
        "global forwarding untouched"
    );
    assert_eq!(t.node_conf("grove-br", "forwarding"), "1");
    assert_eq!(t.node_conf("grove-br", "rp_filter"), "1");
    assert_eq!(t.node_conf(MESH, "forwarding"), "1");
    assert_eq!(t.node_conf(LAN_PORT, "forwarding"), global);
    assert_eq!(
        t.node_rules().len(),
        isolation::rules(workloads.net()).len()
    );

    for rp_filter in ["0", "2"] {
        t.set_node_rp_filter(rp_filter);
        let when = format!("(ip_forward {global}, all.rp_filter {rp_filter})");
        assert!(reaches(&t.mesh, &wl, WORKLOAD), "mesh → workload {when}");
        assert!(reaches(&wl, &t.mesh, REMOTE), "workload → mesh {when}");
        assert!(
            reaches(&t.node, &wl, WORKLOAD),
            "the host itself → workload {when}"
        );
        assert!(blocked(&t.lan, &wl, WORKLOAD), "LAN → workload {when}");
        assert!(
            blocked(&t.lan, &t.mesh, REMOTE),
            "LAN → mesh (injection) {when}"
        );
        assert!(blocked(&wl, &t.lan, LAN_HOST), "workload → LAN {when}");
        assert!(
            blocked(&t.mesh, &t.lan, LAN_HOST),
            "mesh → LAN (transit) {when}"
        );
        for (to_ns, to) in [(&t.mesh, REMOTE), (&t.lan, LAN_HOST)] {
            assert!(
                !delivered(&wl, Some(SPOOFED), to_ns, to, SILENCE),
                "workload with a source outside its subnet → {to} {when}"
            );
        }
        // Local delivery: only strict rp_filter stops it, and `all` at 2
        // loosens the bridge (see the isolation module's note).
        if rp_filter == "0" {
            assert!(
                !delivered(&wl, Some(SPOOFED), &t.node, GATEWAY, SILENCE),
                "workload with a source outside its subnet → the gateway itself {when}"
            );
        }
    }

    t.teardown(workloads);
    assert!(t.node_rules().is_empty(), "teardown removes the rules");
    assert!(!in_netns(&t.node, || linux::table_has_routes(
        isolation::WORKLOAD_TABLE
    )
    .expect("routes")));
    assert!(
        !in_netns(&t.node, || linux::link_exists("grove-br")),
        "bridge deleted"
    );
    assert_eq!(
        t.node_conf(MESH, "forwarding"),
        global,
        "mesh forwarding as found"
    );
    assert_eq!(t.node_conf("all", "forwarding"), global);
}

#[test]
fn isolated_with_global_forwarding_off() {
    if !skip_unless_root("isolated_with_global_forwarding_off") {
        isolation_holds(false);
    }
}

#[test]
fn isolated_with_global_forwarding_on() {
    if !skip_unless_root("isolated_with_global_forwarding_on") {
        isolation_holds(true);
    }
}

#[test]
fn setup_replaces_leftovers_and_cleanup_removes_them() {
    if skip_unless_root("setup_replaces_leftovers_and_cleanup_removes_them") {
        return;
    }
    let t = Topology::new();
    let rules = isolation::rules(&t.net()).len();
    let mut killed = t.setup();
    t.create(&mut killed, 1);
    // A rule at a reserved priority from some other version of grove.
    ip_in(&t.node, "-4 rule add pref 10189 to 10.18.0.0/16 blackhole");
    drop(killed); // netmanager killed: nothing torn down

    // Setup alone adopts the bridge and replaces every reserved rule.
    let net = t.net();
    let mut again = in_netns(&t.node, || {
        Workloads::setup(net).expect("setup over leftovers")
    });
    assert_eq!(t.node_rules().len(), rules, "replaced, not added twice");
    let wl = t.create(&mut again, 1);
    assert!(
        reaches(&wl, &t.mesh, REMOTE),
        "the adopted network forwards"
    );
    drop(again);

    let prefix = t.prefix.clone();
    let removed = in_netns(&t.node, || cleanup_stale(&prefix).expect("cleanup"));
    assert_eq!(removed.len(), 2, "both runs' namespaces: {removed:?}");
    assert!(t.node_rules().is_empty(), "cleanup removes the rules");
    assert!(!in_netns(&t.node, || linux::table_has_routes(
        isolation::WORKLOAD_TABLE
    )
    .expect("routes")));
}

#[test]
fn setup_needs_the_mesh_interface() {
    if skip_unless_root("setup_needs_the_mesh_interface") {
        return;
    }
    let t = Topology::new();
    let mut net = t.net();
    net.mesh_interface = "nosuchtun0".into();
    let err = in_netns(&t.node, || {
        Workloads::setup(net).expect_err("no such interface")
    });
    assert!(
        matches!(err, super::WorkloadError::MissingInterface(_)),
        "{err}"
    );
    assert!(
        !in_netns(&t.node, || linux::link_exists("grove-br")),
        "nothing was made"
    );
    assert!(t.node_rules().is_empty());
}
