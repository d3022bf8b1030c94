//! The system tools and data the demo, the tests and the benchmarks use,
//! installed with apt-get when they are missing, so a fresh Debian or
//! Ubuntu machine with Rust needs nothing else. Without apt-get (or with
//! installing turned off) the error names the packages to install.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::{Error, Result};

/// Something needed and the Debian package that provides it.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// What it is, for messages.
    pub what: &'static str,
    /// A program on the PATH, or an absolute path to a file.
    pub probe: &'static str,
    /// The package.
    pub package: &'static str,
}

const fn need(what: &'static str, probe: &'static str, package: &'static str) -> Need {
    Need { what, probe, package }
}

/// What the demo needs: `ip`, `sysctl`, `nsenter`, the detector's cascades.
pub const DEMO: &[Need] = &[
    need("ip", "ip", "iproute2"),
    need("sysctl", "sysctl", "procps"),
    need("nsenter", "nsenter", "util-linux"),
    need("OpenCV's Haar cascades (the detector's models)", "/usr/share/opencv4/haarcascades/haarcascade_upperbody.xml", "opencv-data"),
];

/// What the scenario tests need besides [`DEMO`]: ping, tcpdump, dig, curl.
pub const TESTS: &[Need] = &[
    need("ping", "ping", "iputils-ping"),
    need("tcpdump", "tcpdump", "tcpdump"),
    need("dig", "dig", "dnsutils"),
    need("curl", "curl", "curl"),
];

/// Whether one need is met.
pub fn present(n: &Need) -> bool {
    if n.probe.starts_with('/') {
        Path::new(n.probe).is_file()
    } else {
        which(n.probe).is_some()
    }
}

/// Installs what of `needs` is missing (once per process at a time), or,
/// with `install` false or no apt-get, fails naming the packages.
/// `progress` hears what is being done.
pub fn ensure(needs: &[Need], install: bool, progress: &dyn Fn(&str)) -> Result<()> {
    // Tests call this in parallel: one apt-get at a time.
    static LOCK: Mutex<()> = Mutex::new(());
    let _one = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let missing: Vec<&Need> = needs.iter().filter(|n| !present(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|n| n.package).collect();
    packages.sort_unstable();
    packages.dedup();
    let what = missing.iter().map(|n| n.what).collect::<Vec<_>>().join(", ");
    if !install || which("apt-get").is_none() {
        return Err(Error::Config(format!(
            "missing: {what}; install them with `apt-get install {}`{}",
            packages.join(" "),
            if install { " (this system has no apt-get)" } else { "" }
        )));
    }
    progress(&format!("installing {} with apt-get (needed: {what}; this happens once)", packages.join(" ")));
    apt_install(&packages, progress)?;
    match needs.iter().find(|n| !present(n)) {
        Some(still) => Err(Error::Config(format!("{} is still missing after installing {}", still.what, still.package))),
        None => Ok(()),
    }
}

/// `apt-get install -y` (after `apt-get update` if the first try fails:
/// a fresh container has no package lists).
fn apt_install(packages: &[&str], progress: &dyn Fn(&str)) -> Result<()> {
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
    let updated = Command::new("apt-get").args(["update", "-q"]).stdin(Stdio::null()).status().map_err(|e| Error::io("apt-get update", e))?;
    if !updated.success() {
        return Err(Error::Config(format!("apt-get update failed ({updated})")));
    }
    let status = install().map_err(|e| Error::io("apt-get install", e))?;
    if !status.success() {
        return Err(Error::Config(format!("apt-get install {} failed ({status})", packages.join(" "))));
    }
    Ok(())
}

/// `tool` on the PATH (or in the sbin directories a non-login root shell
/// may lack).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}
