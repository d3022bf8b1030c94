//! Workload networking: every workload instance on the node gets a network
//! namespace of its own, wired to the node's bridge, like the veth/bridge
//! setup Oakestra's NetManager gives its node engine.
//!
//! ```text
//!  workload netns <prefix>-w0        node netns
//!  eth0 10.18.0.66/26 ──veth── gv1a2b3c4d ─┐
//!  eth0 10.18.0.67/26 ──veth── gv5e6f7a8b ─┴─ bridge 10.18.0.65/26 (gateway, DNS :53)
//!                                               │ forwarding on bridge and TUN only
//!                                             grove0 (mesh TUN): rest of 10.18.0.0/16
//! ```
//!
//! The node forwards between bridge and mesh and for nobody else (no global
//! `ip_forward`; policy rules for hosts that forward anyway): see
//! [`isolation`].
//!
//! Each workload's `/etc/netns/<netns>/resolv.conf` points at the node's
//! resolver with the search list `<app>.<namespace>.svc.<zone> <zone>`, so
//! `ip netns exec <netns> getent hosts closest.ms2` works by short name.
//!
//! All calls run `ip` and block: the daemon owns [`Workloads`] through a
//! [`WorkloadsHandle`], whose dedicated thread (in the node's namespace,
//! see the `linux` module's note) runs them. Everything created is named
//! from the node's `netns_prefix`, so nodes sharing a machine never touch
//! each other's.

mod actor;
pub mod addresses;
mod error;
pub mod isolation;
mod linux;
pub mod names;
#[cfg(test)]
mod netns_testbed;
#[cfg(test)]
mod netns_tests;
mod stale;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

pub use actor::WorkloadsHandle;
pub use addresses::Addresses;
pub use error::WorkloadError;
use isolation::Isolated;
use stale::bridge_to_adopt;
pub use stale::cleanup_stale;

/// The platform DNS zone unless configured otherwise.
pub const DEFAULT_ZONE: &str = "grove";
/// The mesh's address pool: every node subnet lies in it, and it is all a
/// workload may reach through the node.
pub const DEFAULT_MESH_POOL: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 18, 0, 0), 16);
/// Gives up looking for unused names after this many (only leftovers of
/// earlier runs can be in the way, and [`cleanup_stale`] removes those).
const NAME_ATTEMPTS: u32 = 1000;

/// The node's side of workload networking.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkloadNet {
    /// Bridge in the node's namespace, at most 15 bytes, e.g. `grove-br`.
    pub bridge: String,
    /// The node's subnet (a /26 of 10.18.0.0/16); the bridge takes its `.1`.
    pub subnet: Ipv4Net,
    /// The mesh TUN (`grove0`): the one interface besides the bridge the
    /// node forwards for. It must exist when [`Workloads::setup`] runs.
    pub mesh_interface: String,
    /// The pool the mesh routes ([`DEFAULT_MESH_POOL`]); contains `subnet`.
    pub mesh_pool: Ipv4Net,
    /// DNS server for workloads: normally the gateway, where the node's
    /// resolver listens too.
    pub resolver: Ipv4Addr,
    /// DNS zone, [`DEFAULT_ZONE`] by default.
    pub zone: String,
    /// Starts every namespace name; unique per node on the machine.
    pub netns_prefix: String,
    /// MTU of the workloads' default route: the tunnel's, so TCP to other
    /// nodes picks a fitting MSS from the first packet (on-link traffic
    /// keeps the veth's 1500). `None`: the interface MTU.
    pub route_mtu: Option<u16>,
}

impl WorkloadNet {
    /// The usual settings: resolver on the gateway, zone `grove`, pool
    /// 10.18.0.0/16.
    pub fn new(
        bridge: impl Into<String>,
        subnet: Ipv4Net,
        mesh_interface: impl Into<String>,
        netns_prefix: impl Into<String>,
    ) -> WorkloadNet {
        WorkloadNet {
            bridge: bridge.into(),
            subnet,
            mesh_interface: mesh_interface.into(),
            mesh_pool: DEFAULT_MESH_POOL,
            resolver: Ipv4Addr::from(u32::from(subnet.network()) + 1),
            zone: DEFAULT_ZONE.to_owned(),
            netns_prefix: netns_prefix.into(),
            route_mtu: None,
        }
    }
}

/// Which instance a namespace belongs to: the instance's key (its names
/// are valid DNS labels by construction).
pub type WorkloadKey = dns::InstanceKey;

/// One workload's network namespace.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Workload {
    pub key: WorkloadKey,
    /// Name for `ip netns exec`.
    pub netns: String,
    pub address: Ipv4Addr,
    pub gateway: Ipv4Addr,
    /// Host end of the veth pair, a port of the bridge.
    pub host_veth: String,
    /// `/etc/netns/<netns>/resolv.conf`.
    pub resolv_conf: PathBuf,
}

/// The node's workload namespaces.
#[derive(Debug)]
pub struct Workloads {
    net: WorkloadNet,
    addresses: Addresses,
    workloads: HashMap<WorkloadKey, Workload>,
    /// Next namespace number; never reused within a run.
    next: u64,
    /// What teardown puts back on the mesh interface.
    isolated: Isolated,
}

impl Workloads {
    /// Creates (or adopts, if it is already there with the gateway address)
    /// the bridge with `.1/<len>` and brings it up, then isolates the
    /// workload network ([`isolation`]: forwarding on bridge and
    /// mesh interface only, strict `rp_filter` on the bridge, policy rules),
    /// all in the calling thread's namespace. Blocking.
    ///
    /// An adopted bridge is a previous run's and is deleted by
    /// [`Workloads::teardown`] like a created one; so are that run's policy
    /// rules, which are replaced. Run [`cleanup_stale`] first to remove that
    /// run's namespaces.
    pub fn setup(mut net: WorkloadNet) -> Result<Workloads, WorkloadError> {
        let addresses = validate(&mut net)?;
        let gateway = addresses.interface_net(addresses.gateway());
        warn_if_private_mount_ns();
        // Look before changing anything: a conflict leaves the node as it was.
        if !linux::link_exists(&net.mesh_interface) {
            return Err(WorkloadError::MissingInterface(net.mesh_interface));
        }
        let bridge = net.bridge.as_str();
        let adopt = bridge_to_adopt(bridge, gateway)?;
        if adopt {
            linux::bridge_up(bridge)?;
            tracing::info!(%bridge, %gateway, "adopted the existing workload bridge");
        } else {
            linux::create_bridge(bridge, &names::bridge_mac(gateway.addr()), gateway)?;
            tracing::info!(%bridge, %gateway, "created the workload bridge");
        }
        let isolated = match isolation::apply(&net) {
            Ok(isolated) => isolated,
            Err(e) => {
                if let Err(undo) = linux::delete_link(bridge) {
                    tracing::warn!(%bridge, error = %undo, "cannot delete the workload bridge after a failed setup");
                }
                return Err(e);
            }
        };
        tracing::info!(%bridge, mesh = %net.mesh_interface, pool = %net.mesh_pool, "workload network isolated");
        Ok(Workloads {
            net,
            addresses,
            workloads: HashMap::new(),
            next: 0,
            isolated,
        })
    }

    /// Settings in use (subnet normalised to its network address).
    pub fn net(&self) -> &WorkloadNet {
        &self.net
    }

    /// The bridge's address, the workloads' default route.
    pub fn gateway(&self) -> Ipv4Addr {
        self.addresses.gateway()
    }

    /// A namespace for one instance at the lowest free address: veth pair
    /// to the bridge, `eth0` with the address, `lo` up, default route via the
    /// gateway, and its resolv.conf. A failure half-way removes what was made.
    pub fn create(&mut self, key: WorkloadKey) -> Result<Workload, WorkloadError> {
        if self.workloads.contains_key(&key) {
            return Err(WorkloadError::Exists(Box::new(key)));
        }
        let (netns, host_veth) = self.fresh_names()?;
        let address = self.addresses.allocate()?;
        let resolv_conf = match self.build(&key, &netns, &host_veth, address) {
            Ok(path) => path,
            Err(e) => {
                self.addresses.release(address);
                return Err(e);
            }
        };
        let workload = Workload {
            key,
            netns,
            address,
            gateway: self.gateway(),
            host_veth,
            resolv_conf,
        };
        tracing::info!(workload = %key, netns = %workload.netns, %address, "workload namespace created");
        self.workloads.insert(key, workload.clone());
        Ok(workload)
    }

    /// Deletes the namespace with its veth pair and its `/etc/netns`
    /// directory, and frees the address. If the namespace cannot be deleted
    /// the workload stays listed (its address may still be in use), so the
    /// call can be retried.
    pub fn delete(&mut self, key: &WorkloadKey) -> Result<Workload, WorkloadError> {
        let workload = self
            .workloads
            .remove(key)
            .ok_or_else(|| WorkloadError::NotFound(Box::new(*key)))?;
        if let Err(e) = linux::remove_netns(&workload.netns, &workload.host_veth) {
            self.workloads.insert(*key, workload);
            return Err(e);
        }
        linux::remove_etc_netns(&workload.netns);
        self.addresses.release(workload.address);
        tracing::info!(workload = %key, netns = %workload.netns, "workload namespace deleted");
        Ok(workload)
    }

    /// All workloads, by address.
    pub fn list(&self) -> Vec<Workload> {
        let mut all: Vec<Workload> = self.workloads.values().cloned().collect();
        all.sort_by_key(|w| w.address);
        all
    }

    pub fn get(&self, key: &WorkloadKey) -> Option<&Workload> {
        self.workloads.get(key)
    }

    /// Deletes every workload and the bridge (netmanager shutting down).
    /// Failures are logged and the rest still goes.
    pub fn teardown(mut self) {
        let keys: Vec<WorkloadKey> = self.workloads.keys().cloned().collect();
        for key in keys {
            if let Err(e) = self.delete(&key) {
                tracing::warn!(workload = %key, error = %e, "cannot delete workload namespace at shutdown");
            }
        }
        if let Err(e) = isolation::remove() {
            tracing::warn!(error = %e, "cannot remove the workload policy rules; see `ip rule`");
        }
        let bridge = &self.net.bridge;
        if linux::link_exists(bridge) {
            match linux::delete_link(bridge) {
                Ok(()) => tracing::info!(%bridge, "workload bridge deleted"),
                Err(e) => tracing::warn!(%bridge, error = %e, "cannot delete the workload bridge"),
            }
        }
        isolation::restore(&self.net, &self.isolated);
    }

    /// The next namespace and veth names nothing else uses.
    fn fresh_names(&mut self) -> Result<(String, String), WorkloadError> {
        for _ in 0..NAME_ATTEMPTS {
            let netns = names::netns_name(&self.net.netns_prefix, self.next);
            self.next += 1;
            let host_veth = names::host_veth(&netns);
            if !linux::netns_exists(&netns) && !linux::link_exists(&host_veth) {
                return Ok((netns, host_veth));
            }
            tracing::debug!(%netns, %host_veth, "name taken (leftover of an earlier run?), skipping");
        }
        Err(WorkloadError::InvalidNet(format!(
            "no free namespace name with prefix {:?} after {NAME_ATTEMPTS} tries; remove leftovers (`ip netns list`)",
            self.net.netns_prefix
        )))
    }

    /// Makes the namespace, wires it and writes its resolv.conf; undoes all
    /// of it on failure. Returns the resolv.conf path.
    fn build(
        &self,
        key: &WorkloadKey,
        netns: &str,
        host_veth: &str,
        address: Ipv4Addr,
    ) -> Result<PathBuf, WorkloadError> {
        linux::netns_add(netns)?;
        let undo = Undo::new(|| {
            if let Err(e) = linux::remove_netns(netns, host_veth) {
                tracing::warn!(%netns, error = %e, "cannot undo a half-made workload namespace; remove it by hand");
            }
        });
        let interface = self.addresses.interface_net(address);
        linux::plumb(
            netns,
            host_veth,
            &self.net.bridge,
            interface,
            self.gateway(),
            self.net.route_mtu,
        )?;
        let text = names::resolv_conf(self.net.resolver, key, &self.net.zone);
        let path = linux::write_resolv_conf(netns, &text)?;
        undo.disarm();
        Ok(path)
    }
}

/// Checks the settings and normalises subnet and pool to their network
/// addresses; the subnet's allocator.
fn validate(net: &mut WorkloadNet) -> Result<Addresses, WorkloadError> {
    names::validate_bridge(&net.bridge)?;
    names::validate_mesh_interface(&net.mesh_interface)?;
    names::validate_prefix(&net.netns_prefix)?;
    names::validate_zone(&net.zone)?;
    if net.mesh_interface == net.bridge {
        return Err(WorkloadError::InvalidNet(format!(
            "the mesh interface and the bridge are both {:?}",
            net.bridge
        )));
    }
    let addresses = Addresses::new(net.subnet)?;
    net.subnet = addresses.subnet();
    net.mesh_pool = net.mesh_pool.trunc();
    if !net.mesh_pool.contains(&net.subnet) {
        return Err(WorkloadError::InvalidNet(format!(
            "subnet {} lies outside the mesh pool {}",
            net.subnet, net.mesh_pool
        )));
    }
    Ok(addresses)
}

/// Namespace names are mounts in `/run/netns`; made from a mount namespace
/// of our own, the rest of the machine never sees them (`ip netns exec
/// <workload>` fails there with "Invalid argument").
fn warn_if_private_mount_ns() {
    if linux::netns_dir_is_private() {
        tracing::warn!(
            "netmanager has a mount namespace of its own (started with `ip netns exec`?): workload \
             namespaces it creates are visible to it and its children only and lose their names when \
             it exits; start it with `nsenter --net=/run/netns/<node> netmanager …` instead"
        );
    }
}

/// Runs its action when dropped — an early `?` return or a panic — unless
/// disarmed once everything it guards has succeeded.
struct Undo<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Undo<F> {
    fn new(action: F) -> Self {
        Undo(Some(action))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for Undo<F> {
    fn drop(&mut self) {
        if let Some(action) = self.0.take() {
            action();
        }
    }
}
