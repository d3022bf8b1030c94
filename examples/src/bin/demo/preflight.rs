//! What the demo needs before it touches anything. System tools and the
//! detector's models that are missing are installed with apt-get (the
//! demo runs as root anyway), so a fresh Debian or Ubuntu machine with
//! Rust needs nothing else; elsewhere each missing piece is named with the
//! package that provides it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{bail, Context};
use examples::detector::{DEFAULT_CASCADES, FACE_FILE, PERSON_FILE};

use crate::ui::progress;

/// A file or tool and the Debian package that provides it.
struct Need {
    what: &'static str,
    present: fn() -> bool,
    package: &'static str,
}

const NEEDS: &[Need] = &[
    Need { what: "ip", present: || which("ip").is_some(), package: "iproute2" },
    Need { what: "sysctl", present: || which("sysctl").is_some(), package: "procps" },
    Need { what: "nsenter", present: || which("nsenter").is_some(), package: "util-linux" },
    Need { what: "OpenCV's Haar cascades (the detector's models)", present: cascades_present, package: "opencv-data" },
];

fn cascades_present() -> bool {
    let dir = Path::new(DEFAULT_CASCADES);
    dir.join(PERSON_FILE).is_file() && dir.join(FACE_FILE).is_file()
}

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
    let missing: Vec<&Need> = NEEDS.iter().filter(|n| !(n.present)()).collect();
    if !missing.is_empty() {
        let mut packages: Vec<&str> = missing.iter().map(|n| n.package).collect();
        packages.dedup();
        let what: Vec<&str> = missing.iter().map(|n| n.what).collect();
        if !install || which("apt-get").is_none() {
            bail!(
                "missing: {}; install them with `apt-get install {}`{}",
                what.join(", "),
                packages.join(" "),
                if install { " (this system has no apt-get)" } else { "" }
            );
        }
        apt_install(&packages).with_context(|| format!("installing {} (needed: {})", packages.join(" "), what.join(", ")))?;
        if let Some(still) = NEEDS.iter().find(|n| !(n.present)()) {
            bail!("{} is still missing after installing {}", still.what, still.package);
        }
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

/// `apt-get install -y` (after `apt-get update` if the first try fails:
/// a fresh container has no package lists).
fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    progress(&format!("installing {} with apt-get (the demo needs them; this happens once)", packages.join(" ")));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
    };
    if install().is_ok_and(|s| s.success()) {
        return Ok(());
    }
    progress("apt-get update (no package lists yet?)");
    let updated = Command::new("apt-get").args(["update", "-q"]).stdin(Stdio::null()).status().context("apt-get update")?;
    if !updated.success() {
        bail!("apt-get update failed ({updated})");
    }
    let status = install().context("apt-get install")?;
    if !status.success() {
        bail!("apt-get install {} failed ({status})", packages.join(" "));
    }
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
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
