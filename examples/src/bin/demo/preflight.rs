//! What the demo needs before it touches anything, each missing piece
//! reported with the command that provides it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context};

/// The built binaries the demo drives.
pub struct Binaries {
    pub netmanager: PathBuf,
}

/// Checks root, the system tools and the workspace binaries.
pub fn check() -> anyhow::Result<Binaries> {
    if netns_tests::require_root().is_err() {
        bail!(
            "the demo needs root: it creates network namespaces, veth pairs and TUN devices (CAP_NET_ADMIN).\n\
             Run it as root, e.g.:\n  \
             cargo build --release --workspace && sudo ./target/release/demo"
        );
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("ping", "iputils-ping"),
        ("sysctl", "procps"),
    ] {
        if which(tool).is_none() {
            bail!("`{tool}` is not installed; install it with `apt-get install {package}` (or run .ci/run, which installs everything the tests need)");
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        bail!("/dev/net/tun is missing: this kernel (or container) offers no TUN devices; try `modprobe tun`");
    }
    let netmanager =
        netns_tests::bin_path("netmanager").context("the demo runs the real netmanager daemon")?;
    let wanem =
        netns_tests::bin_path("wanem").context("the demo's WAN emulator is the `wanem` binary")?;
    warn_if_stale(&netmanager, &["netmanager/src", "overlay/src"]);
    warn_if_stale(&wanem, &["netns-tests/src"]);
    Ok(Binaries { netmanager })
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// `cargo run -p examples` rebuilds only the demo, so a netmanager built
/// before the last edit would silently run old code: say so.
fn warn_if_stale(binary: &Path, source_dirs: &[&str]) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let Some(built) = modified(binary) else {
        return;
    };
    let newest = source_dirs
        .iter()
        .filter_map(|d| newest_in(&workspace.join(d)))
        .max();
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
        let time = if path.is_dir() {
            newest_in(&path)
        } else {
            modified(&path)
        };
        newest = newest.max(time);
    }
    newest
}
