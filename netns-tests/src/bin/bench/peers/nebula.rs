//! Nebula, with a private CA, static host map and no lighthouse.

use std::time::Duration;

use anyhow::{anyhow, Context};
use netns_tests::{unique_name, ScratchDir, VethLink};

use super::{ensure_running, require_program, wait_for_link, wait_for_ping, SetupError, Tunnel};

const PORT: u16 = 4242;
const MTU: u16 = 1420;

/// nebula in each namespace, 10.20.0.1 (a) ⇄ 10.20.0.2 (b).
pub fn setup(link: &VethLink, dir: &ScratchDir) -> Result<Tunnel, SetupError> {
    require_program("nebula", "nebula")?;
    require_program("nebula-cert", "nebula")?;
    let d = |name: &str| dir.join(name).to_string_lossy().into_owned();
    cert(&["ca", "-name", "grove-bench", "-out-crt", &d("ca.crt"), "-out-key", &d("ca.key")])?;
    let sides = [
        (link.a(), "10.20.0.1", link.b_ip(), "10.20.0.2"),
        (link.b(), "10.20.0.2", link.a_ip(), "10.20.0.1"),
    ];
    let mut guards = Vec::new();
    for (i, (ns, addr, peer_underlay, peer_overlay)) in sides.iter().enumerate() {
        let (crt, key) = (d(&format!("n{i}.crt")), d(&format!("n{i}.key")));
        cert(&[
            "sign", "-name", &format!("n{i}"), "-ip", &format!("{addr}/24"), "-ca-crt", &d("ca.crt"),
            "-ca-key", &d("ca.key"), "-out-crt", &crt, "-out-key", &key,
        ])?;
        let tun = unique_name("neb");
        let config = dir.join(format!("n{i}.yml"));
        let text = config_yaml(&d("ca.crt"), &crt, &key, &tun, peer_overlay, &format!("{peer_underlay}:{PORT}"));
        std::fs::write(&config, text).with_context(|| format!("write {}", config.display()))?;
        let mut guard = ns.spawn_logged(
            "nebula",
            &["-config", &config.to_string_lossy()],
            &dir.join(format!("nebula-{i}.log")),
        )?;
        let up = wait_for_link(ns, &tun, Duration::from_secs(10));
        ensure_running(&mut guard)?;
        up?;
        guards.push(guard);
    }
    let server_ip = "10.20.0.2".parse().map_err(|e| anyhow!("{e}"))?;
    wait_for_ping(link.a(), server_ip, Duration::from_secs(15))?;
    Ok(Tunnel {
        server_ip,
        daemon_pid: guards.first().map(|g| g.pid()),
        guards,
    })
}

fn cert(args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("nebula-cert").args(args).output().context("nebula-cert")?;
    anyhow::ensure!(
        out.status.success(),
        "nebula-cert {}: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn config_yaml(ca: &str, crt: &str, key: &str, tun: &str, peer_overlay: &str, peer_endpoint: &str) -> String {
    format!(
        r#"pki:
  ca: {ca}
  cert: {crt}
  key: {key}
static_host_map:
  "{peer_overlay}": ["{peer_endpoint}"]
lighthouse:
  am_lighthouse: false
  interval: 60
  hosts: []
listen:
  host: 0.0.0.0
  port: {PORT}
punchy:
  punch: false
tun:
  disabled: false
  dev: {tun}
  drop_local_broadcast: false
  drop_multicast: false
  tx_queue: 500
  mtu: {MTU}
logging:
  level: warning
  format: text
firewall:
  conntrack:
    tcp_timeout: 12m
    udp_timeout: 3m
    default_timeout: 10m
  outbound:
    - port: any
      proto: any
      host: any
  inbound:
    - port: any
      proto: any
      host: any
"#
    )
}
