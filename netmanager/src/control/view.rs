//! What the control plane shows the outside (local API, `status`,
//! metrics): a snapshot refreshed by the driver, read without touching it.

use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ControlView {
    pub local: LocalView,
    pub members: Vec<MemberView>,
    /// Joins, revivals, suspicions and deaths seen since start.
    pub changes: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LocalView {
    pub name: String,
    pub peer_id: String,
    pub subnet: String,
    pub authority: String,
    pub is_authority: bool,
    /// Vivaldi's own error estimate (relative).
    pub coordinate_error: f64,
    pub version: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MemberView {
    pub name: String,
    pub peer_id: String,
    pub subnet: String,
    /// The member's tunnel (WireGuard) public key, base64.
    pub wg_public_key: String,
    /// alive, suspect or dead.
    pub state: String,
    pub endpoints: Vec<String>,
    pub location: Option<(f64, f64)>,
    /// Measured RTT (ms), when this node probes the member.
    pub measured_ms: Option<f64>,
    /// RTT the coordinates predict (ms).
    pub estimated_ms: Option<f64>,
    pub instances: usize,
}

impl MemberView {
    /// The RTT the resolver uses: measured if known, else estimated.
    pub fn rtt_ms(&self) -> Option<(f64, &'static str)> {
        self.measured_ms
            .map(|m| (m, "measured"))
            .or(self.estimated_ms.map(|e| (e, "estimated")))
    }
}

/// Shared between the driver (writer) and readers.
pub type SharedView = Arc<RwLock<ControlView>>;
