//! grove: two `netmanager run` daemons with static peers, brought up by the
//! testbed's own launcher (the same path the tests and the demo use).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::anyhow;
use netns_tests::grove::GroveMesh;
use netns_tests::{ScratchDir, VethLink};

use super::{wait_for_ping, SetupError, Tunnel};

/// netmanager in each namespace, 10.18.0.1 (a) ⇄ 10.18.0.2 (b).
pub fn setup(link: &VethLink, dir: &ScratchDir) -> Result<Tunnel, SetupError> {
    let plans = GroveMesh::plan(&[
        ("a", link.a().name(), IpAddr::V4(link.a_ip())),
        ("b", link.b().name(), IpAddr::V4(link.b_ip())),
    ]);
    let mut mesh = GroveMesh::start(plans, dir.path())?;
    let server_ip = IpAddr::V4(mesh.nodes[1].plan.overlay);
    if let Err(e) = wait_for_ping(link.a(), server_ip, Duration::from_secs(15)) {
        return Err(SetupError::Failed(anyhow!("{e}\n{}", mesh.logs())));
    }
    Ok(Tunnel {
        server_ip,
        daemon_pid: mesh.nodes[0].pid(),
        guards: mesh.nodes.iter_mut().filter_map(|n| n.child.take()).collect(),
    })
}
