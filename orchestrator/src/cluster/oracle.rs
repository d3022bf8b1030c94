//! Latency estimates for a cluster's `latency` constraints: the mesh's own
//! RTTs where the target is this cluster's node (measured by the mesh's
//! probes or predicted by its coordinates, no extra probes), distance over
//! fibre ([`GeoRtt`]) otherwise.

use std::collections::HashMap;

use dns::Label;

use crate::mesh::MeshView;
use crate::model::WorkerId;
use crate::schedule::{Candidate, GeoRtt, RttOracle};
use crate::sla::LatencyFrom;

/// What the cluster knows of latencies, refreshed from the mesh.
#[derive(Clone, Debug, Default)]
pub struct MeshRtt {
    /// Named areas (member names) and their locations.
    pub geo: GeoRtt,
    /// This node's name.
    pub local: Option<Label>,
    /// RTT from this node to each member (ms).
    pub from_here: HashMap<Label, f64>,
}

impl MeshRtt {
    /// From a membership view.
    pub fn from_view(view: &MeshView) -> MeshRtt {
        let mut geo = GeoRtt::default();
        let mut from_here = HashMap::new();
        for peer in &view.peers {
            let Some(name) = Label::parse(&peer.name) else { continue };
            if let Some(location) = peer.location {
                geo.areas.insert(name, location);
            }
            if let Some(ms) = peer.rtt_ms {
                from_here.insert(name, ms);
            }
        }
        let local = Label::parse(&view.local_name);
        if let (Some(name), Some(location)) = (local, view.local_location) {
            geo.areas.insert(name, location);
        }
        MeshRtt { geo, local, from_here }
    }
}

impl RttOracle<WorkerId> for MeshRtt {
    fn rtt_ms(&self, candidate: &Candidate<WorkerId>, target: &LatencyFrom) -> Option<f64> {
        if let LatencyFrom::Area(area) = target {
            if Some(*area) == self.local {
                if candidate.name == *area {
                    return Some(0.0);
                }
                if let Some(ms) = self.from_here.get(&candidate.name) {
                    return Some(*ms);
                }
            }
        }
        self.geo.rtt_ms(candidate, target)
    }
}
