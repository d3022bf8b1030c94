//! A node admitted by its site's cluster instead of the authority: the
//! root delegated a block to the cluster when it registered; the cluster's
//! netmanager hands out a join token, and the node joins with the root
//! pinned and the cluster as the one it presents the token to.

use std::time::Duration;

use super::{wait_for, Orchestra, Outcome};
use crate::dynamic::{write_dynamic_config, write_private};
use crate::grove::MESH_PORT;

impl Orchestra {
    /// Waits for the cluster on `cluster` to hold a delegation, takes a
    /// one-use token from its netmanager and starts `node`'s netmanager
    /// joining through it; waits until the root's node sees it alive.
    pub(super) fn join_through_cluster(&mut self, node: usize, cluster: usize) -> Outcome<()> {
        let admitter = &self.mesh.nodes[cluster];
        let delegated = wait_for(Duration::from_secs(15), || admitter.api("GET", "/v1/delegation", None).ok().filter(|(s, _)| *s == 200));
        if delegated.is_none() {
            return Err(format!("the cluster on {} got no delegation from the root\n{}", admitter.name, self.logs(30)));
        }
        let (status, created) = admitter.api("POST", "/v1/tokens", Some(r#"{"uses":1,"ttl_secs":600,"note":"netns-tests"}"#)).map_err(|e| e.to_string())?;
        let token = created["token"].as_str().filter(|_| status == 201).ok_or_else(|| format!("token from {}: {status} {created}", admitter.name))?;
        let token_file = self.dir.join(format!("{}-join-token", self.keys[node]));
        write_private(&token_file, &format!("{token}\n")).map_err(|e| e.to_string())?;
        let control = format!(
            "authority = \"{}\"\nbootstrap = [\"{}@{}:{MESH_PORT}\"]\njoin_token_file = \"{}\"\n",
            self.mesh.authority_id,
            self.peer_ids[cluster],
            admitter.underlay,
            token_file.display()
        );
        write_dynamic_config(&self.mesh.nodes[node], &control).map_err(|e| e.to_string())?;
        self.mesh.nodes[node].start().map_err(|e| format!("netmanager {}: {e}\n{}", self.mesh.nodes[node].name, self.mesh.logs(20)))?;
        let name = self.mesh.nodes[node].name.clone();
        let root = &self.mesh.nodes[0];
        wait_for(Duration::from_secs(15), || root.members_in("alive").contains(&name).then_some(()))
            .ok_or_else(|| format!("the root's node never saw {name} alive\n{}", self.mesh.logs(20)))
    }
}
