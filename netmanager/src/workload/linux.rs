//! The Linux side: `ip` commands, sysctl, `/etc/netns` files.
//!
//! Everything here acts on the network namespace of the *calling thread*
//! (commands inherit it, `if_nametoindex` and `/proc/sys/net` follow it), so
//! callers run on a thread that is in the node's namespace: the daemon's own
//! threads, or a dedicated thread that did `setns` — never a shared one.
//! Namespace names are global to the machine (files in `/run/netns`).

use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

use super::names::WORKLOAD_IFNAME;
use super::WorkloadError;

/// Where `ip netns` keeps namespace names.
pub const NETNS_RUN_DIR: &str = "/run/netns";
/// Where `ip netns exec` finds per-namespace files it mounts over `/etc`.
pub const ETC_NETNS: &str = "/etc/netns";

/// Runs `program args…` and returns its stdout; a non-zero exit becomes an
/// error naming the command and carrying its stderr.
fn run(program: &str, args: &[&str]) -> Result<String, WorkloadError> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| WorkloadError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(WorkloadError::Command {
        command: format!("{program} {}", args.join(" ")),
        status: output.status.to_string(),
        stderr: if stderr.is_empty() {
            "no error output".into()
        } else {
            stderr
        },
    })
}

/// `ip args…` in the calling thread's namespace.
pub fn ip(args: &[&str]) -> Result<String, WorkloadError> {
    run("ip", args)
}

/// `ip -n <netns> args…`: inside a workload namespace.
fn ip_in(netns: &str, args: &[&str]) -> Result<String, WorkloadError> {
    let mut full = vec!["-n", netns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// True if a namespace of that name exists on the machine.
pub fn netns_exists(name: &str) -> bool {
    Path::new(NETNS_RUN_DIR).join(name).exists()
}

/// Names of all namespaces on the machine (`ip netns list`, without ids).
pub fn netns_names() -> Result<Vec<String>, WorkloadError> {
    dir_names(Path::new(NETNS_RUN_DIR))
}

/// Names in `/etc/netns` (per-namespace config directories).
pub fn etc_netns_names() -> Result<Vec<String>, WorkloadError> {
    dir_names(Path::new(ETC_NETNS))
}

fn dir_names(dir: &Path) -> Result<Vec<String>, WorkloadError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(WorkloadError::io("cannot list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| WorkloadError::io("cannot list", dir, e))?;
        names.extend(entry.file_name().to_str().map(str::to_owned));
    }
    Ok(names)
}

/// True if the calling thread's namespace has an interface of that name.
pub fn link_exists(name: &str) -> bool {
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated string; the call only reads it.
    unsafe { libc::if_nametoindex(c_name.as_ptr()) != 0 }
}

/// What a bridge name currently refers to in this namespace.
#[derive(Debug, PartialEq, Eq)]
pub enum Bridge {
    Absent,
    /// An interface of that name that is not a bridge.
    Other,
    Present {
        addresses: Vec<Ipv4Net>,
    },
}

pub fn bridge_state(name: &str) -> Result<Bridge, WorkloadError> {
    if !link_exists(name) {
        return Ok(Bridge::Absent);
    }
    // `type bridge` filters: empty output means the link is something else.
    if ip(&["-o", "link", "show", "dev", name, "type", "bridge"])?
        .trim()
        .is_empty()
    {
        return Ok(Bridge::Other);
    }
    let text = ip(&["-o", "-4", "addr", "show", "dev", name])?;
    let addresses = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().skip_while(|w| *w != "inet");
            words.nth(1)?.parse().ok()
        })
        .collect();
    Ok(Bridge::Present { addresses })
}

/// Creates the bridge with a fixed MAC and the gateway address, up.
pub fn create_bridge(name: &str, mac: &str, gateway: Ipv4Net) -> Result<(), WorkloadError> {
    ip(&["link", "add", name, "address", mac, "type", "bridge"])?;
    let configured =
        ip(&["addr", "add", &gateway.to_string(), "dev", name]).and_then(|_| bridge_up(name));
    if configured.is_err() {
        // Leave nothing half-made behind.
        let _ = ip(&["link", "del", name]);
    }
    configured
}

pub fn bridge_up(name: &str) -> Result<(), WorkloadError> {
    ip(&["link", "set", name, "up"]).map(drop)
}

pub fn delete_link(name: &str) -> Result<(), WorkloadError> {
    ip(&["link", "del", name]).map(drop)
}

/// `/proc/sys/net/ipv4/conf/<interface>/<key>`: per-interface IPv4
/// settings of the calling thread's namespace. Written straight to
/// `/proc/sys` rather than through `sysctl`, one tool fewer to install, and
/// with the interface's real name (`sysctl` would read a `.` in it as `/`).
fn conf_path(interface: &str, key: &str) -> PathBuf {
    Path::new("/proc/sys/net/ipv4/conf")
        .join(interface)
        .join(key)
}

pub fn read_conf(interface: &str, key: &str) -> Result<String, WorkloadError> {
    let path = conf_path(interface, key);
    std::fs::read_to_string(&path)
        .map(|text| text.trim().to_owned())
        .map_err(|e| WorkloadError::io("cannot read", path, e))
}

pub fn write_conf(interface: &str, key: &str, value: &str) -> Result<(), WorkloadError> {
    let path = conf_path(interface, key);
    std::fs::write(&path, format!("{value}\n"))
        .map_err(|e| WorkloadError::io("cannot write", path, e))
}

/// Whether `net.ipv4.ip_forward` (forwarding on every interface) is on:
/// the host is a router already, or runs Docker. Unreadable counts as on,
/// the case that needs the policy rules.
pub fn global_forwarding() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map_or(true, |text| text.trim() != "0")
}

/// Priorities of all IPv4 policy rules (`ip -4 rule show`), one entry per
/// rule, so a priority held by two rules appears twice.
pub fn rule_prefs() -> Result<Vec<u32>, WorkloadError> {
    Ok(parse_rule_prefs(&ip(&["-4", "rule", "show"])?))
}

/// `10180:\tfrom all iif grove-br prohibit` → 10180.
fn parse_rule_prefs(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|line| line.split_once(':')?.0.trim().parse().ok())
        .collect()
}

/// Whether routing table `table` has any IPv4 route. Looked up in the dump
/// of all tables: showing one table that was never made is an error.
pub fn table_has_routes(table: u32) -> Result<bool, WorkloadError> {
    Ok(dump_has_table(
        &ip(&["-4", "route", "show", "table", "all"])?,
        table,
    ))
}

/// Whether a route dump has a line `… table <table> …`.
fn dump_has_table(dump: &str, table: u32) -> bool {
    let table = table.to_string();
    dump.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(2).any(|w| w[0] == "table" && w[1] == table)
    })
}

pub fn netns_add(name: &str) -> Result<(), WorkloadError> {
    ip(&["netns", "add", name]).map(drop)
}

/// Wires a fresh namespace to the bridge: veth pair, address, routes.
pub fn plumb(
    netns: &str,
    host_veth: &str,
    bridge: &str,
    address: Ipv4Net,
    gateway: Ipv4Addr,
    route_mtu: Option<u16>,
) -> Result<(), WorkloadError> {
    // The peer is born inside the namespace under its final name: creating
    // `eth0` here first and moving it could clash with the node's own eth0.
    ip(&[
        "link",
        "add",
        host_veth,
        "type",
        "veth",
        "peer",
        "name",
        WORKLOAD_IFNAME,
        "netns",
        netns,
    ])?;
    ip(&["link", "set", host_veth, "master", bridge, "up"])?;
    ip_in(netns, &["link", "set", "lo", "up"])?;
    ip_in(
        netns,
        &["addr", "add", &address.to_string(), "dev", WORKLOAD_IFNAME],
    )?;
    ip_in(netns, &["link", "set", WORKLOAD_IFNAME, "up"])?;
    let gateway = gateway.to_string();
    let mtu = route_mtu.map(|m| m.to_string());
    let mut route = vec!["route", "add", "default", "via", gateway.as_str(), "dev", WORKLOAD_IFNAME];
    if let Some(mtu) = &mtu {
        route.extend(["mtu", mtu.as_str()]);
    }
    ip_in(netns, &route)?;
    Ok(())
}

/// Removes a workload namespace and its veth pair: through the host end
/// `host_veth` when it is in this namespace, otherwise from inside, through
/// `eth0`, which is certainly ours.
///
/// The pair goes first because `ip netns del` only removes the name: a
/// process still inside keeps the namespace alive, and with it the veth on
/// our bridge holding an address we are about to hand out again.
pub fn remove_netns(netns: &str, host_veth: &str) -> Result<(), WorkloadError> {
    if link_exists(host_veth) {
        delete_link(host_veth)?;
    } else if netns_exists(netns) {
        // Best effort: the pair may be gone already, or the name may have
        // lost its mount (its creator's mount namespace ended).
        if let Err(e) = ip_in(netns, &["link", "del", WORKLOAD_IFNAME]) {
            tracing::debug!(%netns, error = %e, "no workload veth to delete");
        }
    }
    if netns_exists(netns) {
        ip(&["netns", "del", netns])?;
    }
    Ok(())
}

/// Writes `/etc/netns/<netns>/resolv.conf`, which `ip netns exec` mounts over
/// `/etc/resolv.conf` for whatever runs in the workload.
pub fn write_resolv_conf(netns: &str, text: &str) -> Result<PathBuf, WorkloadError> {
    let dir = Path::new(ETC_NETNS).join(netns);
    std::fs::create_dir_all(&dir).map_err(|e| WorkloadError::io("cannot create", &dir, e))?;
    let path = dir.join("resolv.conf");
    if let Err(e) = std::fs::write(&path, text) {
        remove_etc_netns(netns);
        return Err(WorkloadError::io("cannot write", path, e));
    }
    Ok(path)
}

/// Removes `/etc/netns/<netns>`; a failure is logged, not returned, since
/// the network side is what matters and is already gone by then.
pub fn remove_etc_netns(netns: &str) {
    let dir = Path::new(ETC_NETNS).join(netns);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a workload's /etc/netns directory; remove it by hand")
        }
    }
}

/// True when this process's `/run/netns` is a slave mount: it runs in a
/// mount namespace of its own (started with `ip netns exec`), so the names
/// it gives namespaces are mounts the rest of the machine never sees and
/// that vanish when it exits.
pub fn netns_dir_is_private() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|text| slave_netns_dir(&text))
}

/// Whether mountinfo has `/run/netns` receiving mounts from a master
/// without sending any back (`master:<n>` among its optional fields).
fn slave_netns_dir(mountinfo: &str) -> bool {
    mountinfo.lines().any(|line| {
        let head = line.split_once(" - ").map_or(line, |(head, _)| head);
        let mut fields = head.split_whitespace();
        fields.nth(4) == Some(NETNS_RUN_DIR) && fields.any(|f| f.starts_with("master:"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_and_table_dumps() {
        let rules =
            "0:\tfrom all lookup local\n10180:\tfrom 10.18.0.64/26 iif grove-br lookup 1018\n\
                     10180:\tfrom all iif x prohibit\n32766:\tfrom all lookup main\n\n";
        assert_eq!(parse_rule_prefs(rules), [0, 10180, 10180, 32766]);
        assert!(parse_rule_prefs("").is_empty());
        let routes = "10.18.0.0/16 dev grove0 table 1018 scope link \nunreachable default table 1018 \n\
                      local 10.18.0.65 dev grove-br table local proto kernel scope host src 10.18.0.65 \n";
        assert!(dump_has_table(routes, 1018));
        assert!(!dump_has_table(routes, 101));
        assert!(!dump_has_table("default via 10.0.0.1 dev eth0 \n", 1018));
    }

    #[test]
    fn mountinfo_tells_a_private_netns_dir() {
        let host = "42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw\n";
        let under_ip_netns_exec =
            "65 45 254:0 /run/netns /run/netns rw,relatime shared:3 master:1 - ext4 /dev/vda rw\n\
             66 65 0:4 net:[4026532177] /run/netns/n1 rw shared:4 master:2 - nsfs nsfs rw\n";
        assert!(!slave_netns_dir(host));
        assert!(slave_netns_dir(under_ip_netns_exec));
        assert!(!slave_netns_dir(
            "66 65 0:4 net:[1] /run/netns/n1 rw master:2 - nsfs nsfs rw\n"
        ));
        assert!(!slave_netns_dir(""));
    }
}
