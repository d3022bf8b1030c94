//! Keeping the node's workload network to itself with iproute2 alone (no
//! firewall): which packets the node forwards for its workloads and the
//! mesh, and for nobody else.
//!
//! IPv4 forwarding is decided by the *input* interface's `forwarding` flag
//! (`IN_DEV_FORWARD(in_dev)` in the kernel's `ip_route_input_slow`), so it
//! is turned on for the bridge and the mesh TUN only and the global
//! `net.ipv4.ip_forward` is left alone: a LAN host that routes the pool via
//! this node is not forwarded, and a multi-homed host does not become a
//! router. That is not enough on its own: forwarding on the bridge would
//! let workloads out to the host's LAN and beyond, and a host that forwards
//! globally already (a router, a Docker host) forwards from every
//! interface. So policy rules say who may reach what:
//!
//! | pref  | rule                                      | so that |
//! |-------|-------------------------------------------|---------|
//! | 10180 | `from <subnet> iif <bridge> lookup 1018`  | workloads reach their subnet and, through the mesh, the pool; table 1018 ends in `unreachable default` |
//! | 10181 | `iif <bridge> prohibit`                   | any other source on the bridge is spoofed; refused even where `rp_filter` is loose |
//! | 10182 | `to <subnet> iif <mesh> lookup main`      | the mesh reaches the workloads |
//! | 10183 | `iif <mesh> prohibit`                     | and nothing else: no transit from the mesh into the LAN or back into the mesh |
//! | 10184 | `to <pool> iif lo lookup main`            | the host itself reaches workloads and mesh (`iif lo` is how rules see locally sent packets, and the reverse-path check of packets, ARP included, for the node itself) |
//! | 10185 | `to <pool> prohibit`                      | anyone else does not: a LAN host neither reaches workloads nor injects packets into the mesh |
//!
//! Not covered, by design of Linux routing: *local delivery*. The `local`
//! table is looked up at priority 0, before any rule here, so a packet for
//! one of the node's own addresses (the gateway on bridge and TUN
//! included) is delivered whichever interface it came in on: the DNS server
//! on the gateway has to filter its clients itself, and it does (a client
//! allow-list in the `dns` crate). Workloads likewise reach services that
//! listen on any of the host's addresses. Strict `rp_filter` on the bridge
//! keeps spoofed sources from those local services, but only where
//! `conf.all.rp_filter` is not 2 (the larger value wins); forwarded spoofed
//! packets are refused by rule 10181 either way. Also not covered:
//! workloads on the bridge spoofing *each other's* addresses (bridged,
//! never routed).
//!
//! All of this acts on the calling thread's network namespace, like the
//! rest of the module.

use std::ops::RangeInclusive;

use super::{linux, WorkloadError, WorkloadNet};

/// Routing table for packets from workloads: the subnet, the pool via the
/// mesh, nothing else. 1018 for 10.18; free of the reserved 253–255.
pub const WORKLOAD_TABLE: u32 = 1018;
/// Workloads: to the workload table.
pub const PREF_FROM_WORKLOADS: u32 = 10180;
/// Anything else from the bridge: prohibited.
pub const PREF_SPOOFED_FROM_BRIDGE: u32 = 10181;
/// The mesh to the subnet: routed.
pub const PREF_MESH_TO_SUBNET: u32 = 10182;
/// Anything else from the mesh: prohibited.
pub const PREF_MESH_ELSEWHERE: u32 = 10183;
/// The host to the pool: routed.
pub const PREF_HOST_TO_POOL: u32 = 10184;
/// Anyone else to the pool: prohibited.
pub const PREF_OTHERS_TO_POOL: u32 = 10185;
/// Priorities reserved for grove: every rule at one of them is ours, and
/// setup and cleanup remove it (room for rules a later version adds).
/// Below `main` (32766) and wg-quick's 32764/32765, which could otherwise
/// send the pool elsewhere; one node per network namespace, so no two
/// nodes share these.
pub const PREFS: RangeInclusive<u32> = 10180..=10189;

/// What [`apply`] found that [`restore`] puts back.
#[derive(Debug)]
pub(super) struct Isolated {
    /// The mesh TUN's `forwarding` before we turned it on ("1" already on a
    /// host that forwards globally).
    mesh_forwarding: String,
}

/// Arguments of `ip -4 rule add` for each rule, in priority order.
pub(super) fn rules(net: &WorkloadNet) -> Vec<Vec<String>> {
    let subnet = net.subnet.to_string();
    let pool = net.mesh_pool.to_string();
    let table = WORKLOAD_TABLE.to_string();
    let bridge = net.bridge.as_str();
    let mesh = net.mesh_interface.as_str();
    let rule = |pref: u32, words: &[&str]| {
        let mut args = vec!["pref".to_owned(), pref.to_string()];
        args.extend(words.iter().map(|w| (*w).to_owned()));
        args
    };
    vec![
        rule(
            PREF_FROM_WORKLOADS,
            &["from", &subnet, "iif", bridge, "lookup", &table],
        ),
        rule(PREF_SPOOFED_FROM_BRIDGE, &["iif", bridge, "prohibit"]),
        rule(
            PREF_MESH_TO_SUBNET,
            &["to", &subnet, "iif", mesh, "lookup", "main"],
        ),
        rule(PREF_MESH_ELSEWHERE, &["iif", mesh, "prohibit"]),
        rule(
            PREF_HOST_TO_POOL,
            &["to", &pool, "iif", "lo", "lookup", "main"],
        ),
        rule(PREF_OTHERS_TO_POOL, &["to", &pool, "prohibit"]),
    ]
}

/// Arguments of `ip -4 route add` for the workload table.
pub(super) fn table_routes(net: &WorkloadNet) -> Vec<Vec<String>> {
    let table = WORKLOAD_TABLE.to_string();
    let route = |words: &[&str]| -> Vec<String> {
        words
            .iter()
            .map(|w| (*w).to_owned())
            .chain(["table".to_owned(), table.clone()])
            .collect()
    };
    vec![
        route(&[&net.subnet.to_string(), "dev", &net.bridge]),
        route(&[&net.mesh_pool.to_string(), "dev", &net.mesh_interface]),
        route(&["unreachable", "default"]),
    ]
}

/// Replaces whatever an earlier run left with the rules and the table,
/// then turns on forwarding for bridge and mesh and strict `rp_filter` on
/// the bridge (which must exist and be up, as must the mesh interface).
/// Rules come first so the mesh is never forwarded unfiltered. On failure
/// the rules and the table are removed again.
pub(super) fn apply(net: &WorkloadNet) -> Result<Isolated, WorkloadError> {
    let leftovers = remove()?;
    if leftovers > 0 {
        tracing::info!(
            rules = leftovers,
            "replaced policy rules left by an earlier run"
        );
    }
    let mesh_forwarding = linux::read_conf(&net.mesh_interface, "forwarding")?;
    let applied = add_all(net).and_then(|()| {
        linux::write_conf(&net.bridge, "rp_filter", "1")?;
        linux::write_conf(&net.bridge, "forwarding", "1")?;
        linux::write_conf(&net.mesh_interface, "forwarding", "1")
    });
    if let Err(e) = applied {
        if let Err(undo) = remove() {
            tracing::warn!(error = %undo, "cannot remove half-made policy rules; see `ip rule`");
        }
        restore_forwarding(&net.mesh_interface, &mesh_forwarding);
        return Err(e);
    }
    if linux::global_forwarding() {
        tracing::info!(
            "net.ipv4.ip_forward is on (this host routes for others): policy rules keep the mesh pool and the workloads out of it"
        );
    }
    Ok(Isolated { mesh_forwarding })
}

fn add_all(net: &WorkloadNet) -> Result<(), WorkloadError> {
    for route in table_routes(net) {
        let mut args = vec!["-4", "route", "add"];
        args.extend(route.iter().map(String::as_str));
        linux::ip(&args)?;
    }
    for rule in rules(net) {
        let mut args = vec!["-4", "rule", "add"];
        args.extend(rule.iter().map(String::as_str));
        linux::ip(&args)?;
    }
    Ok(())
}

/// Deletes every rule at one of [`PREFS`] and empties [`WORKLOAD_TABLE`].
/// Returns how many rules went.
pub(super) fn remove() -> Result<usize, WorkloadError> {
    let ours: Vec<u32> = linux::rule_prefs()?
        .into_iter()
        .filter(|pref| PREFS.contains(pref))
        .collect();
    for pref in &ours {
        // One rule per call: a priority held twice is listed twice.
        linux::ip(&["-4", "rule", "del", "pref", &pref.to_string()])?;
    }
    if linux::table_has_routes(WORKLOAD_TABLE)? {
        linux::ip(&["-4", "route", "flush", "table", &WORKLOAD_TABLE.to_string()])?;
    }
    Ok(ours.len())
}

/// Puts the mesh TUN's `forwarding` back as [`apply`] found it.
pub(super) fn restore(net: &WorkloadNet, isolated: &Isolated) {
    restore_forwarding(&net.mesh_interface, &isolated.mesh_forwarding);
}

fn restore_forwarding(mesh: &str, value: &str) {
    // Gone with the device already is fine: so is its setting.
    if linux::link_exists(mesh) {
        if let Err(e) = linux::write_conf(mesh, "forwarding", value) {
            tracing::warn!(%mesh, error = %e, "cannot restore the mesh interface's forwarding setting");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> WorkloadNet {
        let subnet = "10.18.0.64/26".parse().expect("test subnet");
        WorkloadNet::new("grove-br", subnet, "grove0", "gwtest")
    }

    fn joined(lines: Vec<Vec<String>>) -> Vec<String> {
        lines.into_iter().map(|l| l.join(" ")).collect()
    }

    #[test]
    fn rules_in_priority_order() {
        assert_eq!(
            joined(rules(&net())),
            [
                "pref 10180 from 10.18.0.64/26 iif grove-br lookup 1018",
                "pref 10181 iif grove-br prohibit",
                "pref 10182 to 10.18.0.64/26 iif grove0 lookup main",
                "pref 10183 iif grove0 prohibit",
                "pref 10184 to 10.18.0.0/16 iif lo lookup main",
                "pref 10185 to 10.18.0.0/16 prohibit",
            ]
        );
        let prefs: Vec<u32> = rules(&net())
            .iter()
            .filter_map(|r| r.get(1)?.parse().ok())
            .collect();
        assert!(prefs.windows(2).all(|w| w[0] < w[1]), "{prefs:?}");
        assert!(prefs.iter().all(|p| PREFS.contains(p)), "{prefs:?}");
    }

    #[test]
    fn workload_table_reaches_the_subnet_and_the_pool_only() {
        assert_eq!(
            joined(table_routes(&net())),
            [
                "10.18.0.64/26 dev grove-br table 1018",
                "10.18.0.0/16 dev grove0 table 1018",
                "unreachable default table 1018",
            ]
        );
    }
}
