//! The baseline: no tunnel, straight over the veth.

use netns_tests::VethLink;

use super::{SetupError, Tunnel};

/// Nothing to set up; aim at side b's veth address.
pub fn setup(link: &VethLink) -> Result<Tunnel, SetupError> {
    Ok(Tunnel {
        server_ip: link.b_ip().into(),
        daemon_pid: None,
        guards: Vec::new(),
    })
}
