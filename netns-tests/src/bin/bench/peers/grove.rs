//! grove: two `netmanager run` daemons with static peers.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context};
use netns_tests::{bin_path, Netns, ScratchDir, VethLink};

use super::{ensure_running, wait_for_link, wait_for_ping, SetupError, Tunnel};

const PORT: u16 = 50103;
const TUN: &str = "grove0";

/// netmanager in each namespace, 10.18.0.1 (a) ⇄ 10.18.0.2 (b).
pub fn setup(link: &VethLink, dir: &ScratchDir) -> Result<Tunnel, SetupError> {
    let netmanager = bin_path("netmanager").map_err(|e| SetupError::Failed(e.into()))?;
    let netmanager = netmanager.to_string_lossy().into_owned();
    let sides = [
        (link.a(), "10.18.0.1", link.b_ip(), "10.18.0.2"),
        (link.b(), "10.18.0.2", link.a_ip(), "10.18.0.1"),
    ];
    let mut public_keys = Vec::new();
    for (i, (ns, ..)) in sides.iter().enumerate() {
        public_keys.push(keygen(ns, &netmanager, &dir.join(format!("node{i}.key")))?);
    }
    let mut guards = Vec::new();
    for (i, (ns, addr, peer_underlay, peer_overlay)) in sides.iter().enumerate() {
        let config = dir.join(format!("node{i}.toml"));
        let text = config_toml(
            &dir.join(format!("node{i}.key")),
            addr,
            &dir.join(format!("node{i}.sock")),
            &public_keys[1 - i],
            &format!("{peer_underlay}:{PORT}"),
            peer_overlay,
        );
        std::fs::write(&config, text).with_context(|| format!("write {}", config.display()))?;
        let config_arg = config.to_string_lossy().into_owned();
        let mut guard = ns.spawn_with(
            &netmanager,
            &["run", "--config", &config_arg],
            &dir.join(format!("netmanager-{i}.log")),
            &[("RUST_LOG", "warn")],
        )?;
        let up = wait_for_link(ns, TUN, Duration::from_secs(10));
        ensure_running(&mut guard)?;
        up?;
        guards.push(guard);
    }
    let server_ip = "10.18.0.2".parse().map_err(|e| anyhow!("{e}"))?;
    if let Err(e) = wait_for_ping(link.a(), server_ip, Duration::from_secs(15)) {
        let logs: Vec<String> = guards.iter().map(|g| format!("{}:\n{}", g.label(), g.log_tail(20))).collect();
        return Err(SetupError::Failed(anyhow!("{e}\n{}", logs.join("\n"))));
    }
    Ok(Tunnel {
        server_ip,
        daemon_pid: guards.first().map(|g| g.pid()),
        guards,
    })
}

/// `netmanager keygen --out <file>` in `ns`; returns the public key.
fn keygen(ns: &Netns, netmanager: &str, out: &Path) -> anyhow::Result<String> {
    let out_arg = out.to_string_lossy().into_owned();
    let output = ns.exec_ok(netmanager, &["keygen", "--out", &out_arg])?;
    let public = String::from_utf8_lossy(&output.stdout).trim().to_string();
    anyhow::ensure!(!public.is_empty(), "netmanager keygen printed no public key");
    Ok(public)
}

/// The netmanager config of one side.
fn config_toml(key: &Path, address: &str, socket: &Path, peer_key: &str, endpoint: &str, peer_addr: &str) -> String {
    format!(
        "private_key_file = \"{key}\"\n\
         listen_port = {PORT}\n\
         interface = \"{TUN}\"\n\
         address = \"{address}/24\"\n\
         control_socket = \"{socket}\"\n\
         \n\
         [[peer]]\n\
         public_key = \"{peer_key}\"\n\
         endpoints = [\"{endpoint}\"]\n\
         allowed_ips = [\"{peer_addr}/32\"]\n",
        key = key.display(),
        socket = socket.display(),
    )
}
