//! The dynamic mesh of `bench closest`: started node by node, stopped as
//! a whole, its logs kept on request.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use netns_tests::dynamic::DynamicMesh;
use netns_tests::{interrupt, Signal};

use super::poll::pause;
use super::Progress;

/// The mesh, stopped as a whole on drop: SIGTERM to every node first,
/// then the waits, so 30 nodes do not take 30 grace periods.
pub struct MeshGuard(pub DynamicMesh);

impl Deref for MeshGuard {
    type Target = DynamicMesh;
    fn deref(&self) -> &DynamicMesh {
        &self.0
    }
}

impl DerefMut for MeshGuard {
    fn deref_mut(&mut self) -> &mut DynamicMesh {
        &mut self.0
    }
}

impl Drop for MeshGuard {
    fn drop(&mut self) {
        for child in self.0.nodes.iter().filter_map(|n| n.child.as_ref()) {
            let _ = child.signal(Signal::Term);
        }
        for child in self.0.nodes.iter_mut().filter_map(|n| n.child.as_mut()) {
            let _ = child.wait_for_exit(Duration::from_secs(5));
        }
    }
}

/// Starts every node in order (node 0, the authority, first) and waits
/// until every node lists every other as alive; how long that took.
pub fn start_all(mesh: &mut DynamicMesh, p: Progress) -> Result<Duration> {
    let n = mesh.nodes.len();
    let t0 = Instant::now();
    for i in 0..n {
        interrupt::check()?;
        mesh.nodes[i]
            .start()
            .with_context(|| format!("starting node {i} of {n}"))?;
        if (i + 1) % 10 == 0 || i + 1 == n {
            p.say(&format!("   {} of {n} started", i + 1));
        }
    }
    let started = t0.elapsed();
    wait_all_alive(mesh, Duration::from_secs(180))?;
    let took = t0.elapsed();
    p.say(&format!(
        "   every node sees the other {} alive: {:.1} s after the first start ({:.1} s after the last)",
        n - 1,
        took.as_secs_f64(),
        (took - started).as_secs_f64()
    ));
    Ok(took)
}

/// Every node lists every other as alive; checks Ctrl-C between polls.
fn wait_all_alive(mesh: &DynamicMesh, timeout: Duration) -> Result<()> {
    let want = mesh.nodes.len() - 1;
    let t0 = Instant::now();
    loop {
        interrupt::check()?;
        let behind: Vec<&str> = mesh
            .nodes
            .iter()
            .filter(|n| n.members_in("alive").len() < want)
            .map(|n| n.name.as_str())
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        if t0.elapsed() > timeout {
            return Err(anyhow!(
                "after {timeout:?}, {} nodes still miss live members: {}",
                behind.len(),
                behind.join(" ")
            ));
        }
        pause(Duration::from_millis(500))?;
    }
}

/// Copies the `*.log` files of `dirs` into `to`; how many.
pub fn copy_logs(dirs: &[&Path], to: &Path) -> Result<usize> {
    std::fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
    let mut n = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
            let path = entry
                .with_context(|| format!("read {}", dir.display()))?
                .path();
            if let (Some(name), Some("log")) =
                (path.file_name(), path.extension().and_then(|e| e.to_str()))
            {
                std::fs::copy(&path, to.join(name))
                    .with_context(|| format!("copy {}", path.display()))?;
                n += 1;
            }
        }
    }
    Ok(n)
}
