//! Pure naming: validating what callers pass, naming what we create, and the
//! workload's resolv.conf.
//!
//! Several nodes run on one machine in the tests and the demo, each node a
//! network namespace, so every name we create derives from the node's
//! `netns_prefix`: namespace names (global to the machine: they are files in
//! `/run/netns`) directly, veth names (which live in the node's namespace and
//! are limited to 15 bytes) through a hash of the namespace name.

use std::net::Ipv4Addr;

use super::{WorkloadError, WorkloadKey};

/// Longest interface name Linux accepts (`IFNAMSIZ - 1`).
pub const MAX_IFNAME: usize = 15;
/// The workload's interface inside its namespace, as containers expect.
pub const WORKLOAD_IFNAME: &str = "eth0";
/// Longest `netns_prefix`; keeps `ip netns list` readable and far from NAME_MAX.
const MAX_PREFIX: usize = 64;
/// Checks the DNS zone as the DNS server does (`grove`, `edge.example`).
pub fn validate_zone(zone: &str) -> Result<(), WorkloadError> {
    dns::Zone::new(zone).map(drop).map_err(|e| {
        WorkloadError::InvalidNet(format!("DNS zone {zone:?}: {e}; use the zone the node's DNS serves, e.g. \"grove\""))
    })
}

/// Checks the node's prefix: it starts every namespace name, so it must be
/// a plain file name; keep it unique per node on the machine.
pub fn validate_prefix(prefix: &str) -> Result<(), WorkloadError> {
    let ok = (1..=MAX_PREFIX).contains(&prefix.len())
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && prefix.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(WorkloadError::InvalidNet(format!(
            "netns prefix {prefix:?} must be 1 to {MAX_PREFIX} letters, digits, '-', '_' or '.', starting with a letter or digit (e.g. \"grove-n3\")"
        )))
    }
}

/// Checks the bridge name against what Linux accepts for an interface.
pub fn validate_bridge(bridge: &str) -> Result<(), WorkloadError> {
    validate_interface("bridge", bridge, "grove-br")
}

/// Checks the mesh TUN's name the same way.
pub fn validate_mesh_interface(name: &str) -> Result<(), WorkloadError> {
    validate_interface("mesh interface", name, "grove0")
}

/// An interface name Linux accepts that is also a plain path component:
/// it is spliced into `/proc/sys/net/ipv4/conf/<name>/…`.
fn validate_interface(what: &str, name: &str, example: &str) -> Result<(), WorkloadError> {
    let ok = (1..=MAX_IFNAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(WorkloadError::InvalidNet(format!(
            "{what} name {name:?} must be 1 to {MAX_IFNAME} letters, digits, '-', '_' or '.' (e.g. \"{example}\")"
        )))
    }
}

/// The `n`-th workload namespace of the node: `<prefix>-w<n>`.
pub fn netns_name(prefix: &str, n: u64) -> String {
    format!("{prefix}-w{n}")
}

/// True for names [`netns_name`] makes with this prefix, and only those:
/// the prefix `grove-n3` must not claim `grove-n3-x-w1`, which belongs to a
/// node whose prefix is `grove-n3-x`.
pub fn is_netns_name(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("-w"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The host end of the workload's veth pair, `gv` + 8 hex digits hashing the
/// namespace name (which carries the node prefix), so ten bytes whatever the
/// prefix's length.
pub fn host_veth(netns: &str) -> String {
    format!("gv{:08x}", fnv1a32(netns.as_bytes()))
}

/// The bridge's MAC: fixed (locally administered, from the gateway address)
/// because a bridge without one takes its lowest port's MAC and changes it
/// when that workload goes, leaving the others' ARP entry for the gateway
/// stale for tens of seconds.
pub fn bridge_mac(gateway: Ipv4Addr) -> String {
    let [a, b, c, d] = gateway.octets();
    format!("02:00:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// The workload's `/etc/resolv.conf`: the node's resolver, and the search
/// list that makes `closest.ms2` mean `closest.ms2.<app>.<ns>.svc.<zone>`
/// first (the asker's own app wins) and `closest.ms2.<zone>` next. ndots:5
/// sends even dotted short names through the search list first.
pub fn resolv_conf(resolver: Ipv4Addr, key: &WorkloadKey, zone: &str) -> String {
    format!(
        "# grove workload {key}: written by netmanager, removed with the workload\n\
         nameserver {resolver}\n\
         search {}.{}.svc.{zone} {zone}\n\
         options ndots:5\n",
        key.app, key.namespace
    )
}

/// FNV-1a: tiny and stable across Rust releases (unlike `DefaultHasher`), so
/// a later netmanager computes the same veth names as the one before it.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key(service: &str, app: &str, namespace: &str) -> WorkloadKey {
        WorkloadKey::new(service, app, namespace, 1).expect("key")
    }

    #[test]
    fn zone_prefix_and_bridge() {
        assert!(validate_zone("grove").is_ok());
        assert!(validate_zone("grove.example").is_ok());
        assert!(
            validate_zone("svc.example").is_ok(),
            "only keys may not use `svc`"
        );
        assert!(
            validate_zone(&["a"; 119].join(".")).is_ok(),
            "237 characters"
        );
        for bad in [
            "",
            ".grove",
            "gro ve",
            &["a"; 120].join("."),
        ] {
            assert!(validate_zone(bad).is_err(), "{bad:?}");
        }
        assert!(validate_prefix("grove-n3").is_ok());
        for bad in ["", "-x", "a/b", "a b", &"p".repeat(65)] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(validate_bridge("grove-br").is_ok());
        for bad in ["", "grove-bridge-n03", "a/b", "a:b", "..", "br 0"] {
            assert!(validate_bridge(bad).is_err(), "{bad:?}");
            assert!(validate_mesh_interface(bad).is_err(), "{bad:?}");
        }
        assert!(validate_mesh_interface("grove0").is_ok());
        let err = validate_mesh_interface("../all").expect_err("a path");
        assert!(err.to_string().contains("mesh interface name"), "{err}");
    }

    #[test]
    fn netns_names_and_stale_matching() {
        assert_eq!(netns_name("grove-n3", 0), "grove-n3-w0");
        assert!(is_netns_name("grove-n3", "grove-n3-w0"));
        assert!(is_netns_name("grove-n3", &netns_name("grove-n3", 123_456)));
        for other in [
            "grove-n3",
            "grove-n3-w",
            "grove-n3-wx",
            "grove-n3x-w1",
            "grove-n3-x-w1",
            "grove-n3-w1-w2",
            "grove-n-w1",
        ] {
            assert!(!is_netns_name("grove-n3", other), "{other}");
        }
        // The other node's names are its own.
        assert!(is_netns_name("grove-n3-x", "grove-n3-x-w1"));
    }

    #[test]
    fn veth_names_are_short_stable_and_distinct_across_nodes() {
        let long_prefix = "p".repeat(64);
        assert_eq!(host_veth(&netns_name(&long_prefix, 7)).len(), 10);
        assert_eq!(host_veth("grove-n3-w0"), host_veth("grove-n3-w0"));
        // Stable across releases: pinned value.
        assert_eq!(
            host_veth("grove-n3-w0"),
            format!("gv{:08x}", fnv1a32(b"grove-n3-w0"))
        );
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        let names: HashSet<String> = (0..50)
            .flat_map(|node| {
                (0..200).map(move |n| host_veth(&netns_name(&format!("grove-n{node}"), n)))
            })
            .collect();
        assert_eq!(names.len(), 50 * 200);
        assert!(names.iter().all(|n| n.len() <= MAX_IFNAME));
    }

    #[test]
    fn bridge_mac_is_unicast_and_local() {
        assert_eq!(
            bridge_mac(Ipv4Addr::new(10, 18, 0, 65)),
            "02:00:0a:12:00:41"
        );
    }

    #[test]
    fn resolv_conf_text() {
        let text = resolv_conf(
            Ipv4Addr::new(10, 18, 0, 65),
            &key("ms2", "cam", "default"),
            "grove",
        );
        assert_eq!(
            text,
            "# grove workload ms2/cam/default/1: written by netmanager, removed with the workload\n\
             nameserver 10.18.0.65\n\
             search cam.default.svc.grove grove\n\
             options ndots:5\n"
        );
    }
}
