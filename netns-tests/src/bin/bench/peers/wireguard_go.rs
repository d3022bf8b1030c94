//! wireguard-go, the userspace WireGuard reference, configured with `wg`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Context};
use netns_tests::{unique_name, Netns, ScratchDir, VethLink};

use super::{ensure_running, require_program, wait_for_link, wait_for_ping, SetupError, Tunnel};

const PORT: &str = "51820";
const MTU: &str = "1420";

/// Two wireguard-go instances, 10.19.0.1 (a) ⇄ 10.19.0.2 (b).
pub fn setup(link: &VethLink, dir: &ScratchDir) -> Result<Tunnel, SetupError> {
    require_program("wireguard-go", "wireguard-go")?;
    require_program("wg", "wireguard-tools")?;
    let keys = [keypair()?, keypair()?];
    let sides = [
        (link.a(), "10.19.0.1", link.b_ip(), "10.19.0.2"),
        (link.b(), "10.19.0.2", link.a_ip(), "10.19.0.1"),
    ];
    let mut guards = Vec::new();
    for (i, (ns, addr, peer_underlay, peer_overlay)) in sides.iter().enumerate() {
        // The UAPI socket lives in /var/run/wireguard, shared by all
        // namespaces, so interface names must be unique machine-wide.
        let ifname = unique_name("wg");
        let mut guard = ns.spawn_with(
            "wireguard-go",
            &["-f", &ifname],
            &dir.join(format!("wireguard-go-{i}.log")),
            &[("WG_PROCESS_FOREGROUND", "1"), ("LOG_LEVEL", "error")],
        )?;
        wait_for_link(ns, &ifname, Duration::from_secs(5))?;
        ensure_running(&mut guard)?;
        let key_file = dir.join(format!("wg{i}.key"));
        write_private(&key_file, &keys[i].0)?;
        let key_path = key_file.to_string_lossy().into_owned();
        let endpoint = format!("{peer_underlay}:{PORT}");
        let allowed = format!("{peer_overlay}/32");
        let peer_pub = &keys[1 - i].1;
        wg_set(ns, &ifname, &key_path, peer_pub, &endpoint, &allowed)?;
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", &ifname])?;
        ns.ip(&["link", "set", &ifname, "mtu", MTU, "up"])?;
        guards.push(guard);
    }
    let server_ip = "10.19.0.2".parse().map_err(|e| anyhow!("{e}"))?;
    wait_for_ping(link.a(), server_ip, Duration::from_secs(10))?;
    Ok(Tunnel {
        server_ip,
        daemon_pid: guards.first().map(|g| g.pid()),
        guards,
    })
}

fn wg_set(ns: &Netns, ifname: &str, key: &str, peer: &str, endpoint: &str, allowed: &str) -> anyhow::Result<()> {
    ns.exec_ok(
        "wg",
        &[
            "set", ifname, "listen-port", PORT, "private-key", key, "peer", peer, "endpoint", endpoint,
            "allowed-ips", allowed,
        ],
    )?;
    Ok(())
}

/// (private, public) keys from `wg genkey` / `wg pubkey`.
fn keypair() -> anyhow::Result<(String, String)> {
    let private = Command::new("wg").arg("genkey").output().context("wg genkey")?;
    anyhow::ensure!(private.status.success(), "wg genkey failed");
    let private = String::from_utf8_lossy(&private.stdout).trim().to_string();
    let mut child = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("wg pubkey")?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("wg pubkey stdin"))?
        .write_all(private.as_bytes())
        .context("write to wg pubkey")?;
    let public = child.wait_with_output().context("wg pubkey")?;
    anyhow::ensure!(public.status.success(), "wg pubkey failed");
    Ok((private, String::from_utf8_lossy(&public.stdout).trim().to_string()))
}

/// Writes a secret with mode 0600.
pub fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
