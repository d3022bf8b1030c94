//! `netmanager status`: the running daemon's view, printed like `wg show`.

use std::fmt::Write;

use overlay::{DeviceStatus, PeerStatus};

use crate::api::Members;

/// Renders the dynamic mesh: this node, its members with their RTT
/// (measured or estimated), and what `closest` answers from here.
pub fn render_members(members: &Members) -> String {
    let mut out = String::new();
    let local = &members.view.local;
    let role = if local.is_authority { " (admission authority)" } else { "" };
    let _ = writeln!(out, "node: {}{role}", local.name);
    let _ = writeln!(out, "  peer id: {}", local.peer_id);
    let _ = writeln!(out, "  subnet: {}", local.subnet);
    let _ = writeln!(out, "  coordinate error: {:.0}%", local.coordinate_error * 100.0);
    let _ = writeln!(out, "\nmembers: {}", members.view.members.len());
    let _ = writeln!(out, "  {:<16} {:<8} {:<16} {:>20}  {:<16} INSTANCES", "NAME", "STATE", "SUBNET", "RTT", "LOCATION");
    for m in &members.view.members {
        let rtt = match m.rtt_ms() {
            Some((ms, source)) => format!("{ms:.1} ms {source}"),
            None => "-".into(),
        };
        let location = m.location.map(|l| format!("{:.2},{:.2}", l.lat, l.lon)).unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "  {:<16} {:<8} {:<16} {:>20}  {:<16} {}", m.name, m.state.as_str(), m.subnet.to_string(), rtt, location, m.instances);
    }
    for c in &members.view.conflicts {
        let _ = writeln!(out, "  conflict: instance {} announced by {} (the first serves)", c.instance, c.nodes.join(", "));
    }
    if !members.closest.is_empty() {
        let _ = writeln!(out, "\nclosest answers from here:");
        for c in &members.closest {
            let address = c.address.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
            let degraded = if c.degraded { " [no healthy instance: unhealthy served]" } else { "" };
            let _ = writeln!(out, "  closest.{}.{}.{} -> instance {} on {} ({address}){degraded}", c.service, c.app, c.namespace, c.number, c.node);
        }
    }
    out
}

/// Renders the status the way `wg show` lays it out.
pub fn render(status: &DeviceStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "interface: {}", status.interface);
    let _ = writeln!(out, "  public key: {}", status.public_key);
    let _ = writeln!(out, "  listening port: {}", status.listen_port);
    let addrs: Vec<String> = status.addresses.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(out, "  address: {}", addrs.join(", "));
    let _ = writeln!(
        out,
        "  mtu: {} (offload {})",
        status.mtu,
        if status.offload { "on" } else { "off" }
    );
    if !status.drops.is_empty() {
        let _ = writeln!(out, "  dropped: {}", drops(&status.drops));
    }
    for peer in &status.peers {
        out.push('\n');
        render_peer(&mut out, peer);
    }
    out
}

fn render_peer(out: &mut String, p: &PeerStatus) {
    let _ = writeln!(out, "peer: {}", p.public_key);
    if let Some(e) = p.endpoint {
        let _ = writeln!(out, "  endpoint: {e}");
    }
    let ips: Vec<String> = p.allowed_ips.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(out, "  allowed ips: {}", ips.join(", "));
    if let Some(secs) = p.last_handshake_secs {
        let _ = writeln!(out, "  latest handshake: {} ago", human_duration(secs));
    }
    if let Some(rtt) = p.handshake_rtt_ms {
        let _ = writeln!(out, "  handshake rtt: {rtt} ms");
    }
    if p.rx_bytes > 0 || p.tx_bytes > 0 {
        let _ = writeln!(
            out,
            "  transfer: {} received, {} sent",
            human_bytes(p.rx_bytes),
            human_bytes(p.tx_bytes)
        );
    }
    if let Some(k) = p.keepalive_secs {
        let _ = writeln!(out, "  persistent keepalive: every {k} seconds");
    }
    if !p.drops.is_empty() {
        let _ = writeln!(out, "  dropped: {}", drops(&p.drops));
    }
}

fn drops(d: &std::collections::BTreeMap<String, u64>) -> String {
    d.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

fn human_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s} second{}", if s == 1 { "" } else { "s" }),
        60..=3599 => format!("{} minutes, {} seconds", s / 60, s % 60),
        _ => format!("{} hours, {} minutes", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_wg_show() {
        let status = DeviceStatus {
            interface: "grove0".into(),
            public_key: "PUB".into(),
            listen_port: 50103,
            mtu: 1420,
            addresses: vec!["10.18.0.1/24".parse().expect("net")],
            offload: true,
            peers: vec![PeerStatus {
                public_key: "PEER".into(),
                endpoint: Some("198.18.1.2:50103".parse().expect("addr")),
                allowed_ips: vec!["10.18.0.2/32".parse().expect("net")],
                last_handshake_secs: Some(3.2),
                handshake_rtt_ms: Some(7),
                rx_bytes: 2048,
                rx_packets: 2,
                tx_bytes: 10,
                tx_packets: 1,
                keepalive_secs: Some(25),
                drops: [("replay".to_string(), 3)].into_iter().collect(),
            }],
            drops: Default::default(),
        };
        let text = render(&status);
        for needle in [
            "interface: grove0",
            "listening port: 50103",
            "peer: PEER",
            "endpoint: 198.18.1.2:50103",
            "allowed ips: 10.18.0.2/32",
            "latest handshake: 3 seconds ago",
            "transfer: 2.00 KiB received, 10 B sent",
            "persistent keepalive: every 25 seconds",
            "dropped: replay=3",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
