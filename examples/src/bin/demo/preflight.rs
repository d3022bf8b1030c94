//! What the demo needs before it touches anything. System tools and the
//! detector's models that are missing are installed with apt-get
//! ([`netns_tests::tools`]; the demo runs as root anyway), so a fresh
//! Debian or Ubuntu machine with Rust needs nothing else.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{bail, Context};
use examples::detector::{DEFAULT_CASCADES, FACE_FILE, PERSON_FILE};
use netns_tests::tools;

use crate::ui::progress;

/// Checks root, installs what is missing (unless `install` is false),
/// checks the workspace's binaries.
pub fn check(install: bool) -> anyhow::Result<()> {
    if netns_tests::require_root().is_err() {
        bail!(
            "the demo needs root: it creates network namespaces, veth pairs and TUN devices (CAP_NET_ADMIN).\n\
             Run it as root, e.g.:\n  \
             cargo build --release --workspace && sudo ./target/release/demo"
        );
    }
    tools::ensure(tools::DEMO, install, &|line| progress(line))?;
    let cascades = Path::new(DEFAULT_CASCADES);
    if !cascades.join(PERSON_FILE).is_file() || !cascades.join(FACE_FILE).is_file() {
        bail!("{DEFAULT_CASCADES} lacks {PERSON_FILE} or {FACE_FILE}; reinstall opencv-data");
    }
    if !Path::new("/dev/net/tun").exists() {
        bail!("/dev/net/tun is missing: this kernel (or container) offers no TUN devices; try `modprobe tun`");
    }
    for (binary, sources) in [
        ("netmanager", &["netmanager/src", "overlay/src", "dns/src"][..]),
        ("wanem", &["netns-tests/src"][..]),
        ("grove", &["orchestrator/src"][..]),
        ("anonymise", &["examples/src"][..]),
        ("detect", &["examples/src"][..]),
        ("camera", &["examples/src"][..]),
    ] {
        let path = netns_tests::bin_path(binary).with_context(|| format!("the demo runs the real `{binary}`"))?;
        warn_if_stale(&path, sources);
    }
    Ok(())
}

/// `cargo run -p examples` rebuilds only the demo, so a daemon built
/// before the last edit would silently run old code: say so.
fn warn_if_stale(binary: &Path, source_dirs: &[&str]) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let Some(built) = modified(binary) else {
        return;
    };
    let newest = source_dirs.iter().filter_map(|d| newest_in(&workspace.join(d))).max();
    if newest.is_some_and(|source| source > built) {
        eprintln!(
            "warning: {} is older than its sources; run `cargo build --release --workspace` to demo the current code",
            binary.display()
        );
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

fn newest_in(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() { newest_in(&path) } else { modified(&path) };
        newest = newest.max(time);
    }
    newest
}
