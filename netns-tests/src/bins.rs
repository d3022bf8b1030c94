//! Finding the workspace's binaries (`netmanager`, `wanem`, `grove`, …).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Environment variable that overrides where binaries are looked up.
pub const BIN_DIR_ENV: &str = "GROVE_BIN_DIR";

/// Locates the workspace binary `name`.
///
/// Looks in `$GROVE_BIN_DIR` if set; otherwise next to the running
/// executable and in its parent directory (test executables live in
/// `target/<profile>/deps`, binaries in `target/<profile>`). Fails with a
/// message saying to run `cargo build --release --workspace`.
pub fn bin_path(name: &str) -> Result<PathBuf> {
    let dirs = search_dirs();
    for dir in &dirs {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::BinaryMissing {
        name: name.to_string(),
        searched: dirs,
    })
}

fn search_dirs() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return vec![PathBuf::from(dir)];
    }
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
        if let Some(parent) = dir.parent() {
            let parent = parent.to_path_buf();
            dirs.push(dir);
            dirs.push(parent);
        } else {
            dirs.push(dir);
        }
    }
    dirs
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_says_how_to_build() {
        let err = bin_path("no-such-grove-binary").expect_err("binary must be missing");
        assert!(err.to_string().contains("cargo build --release --workspace"));
    }
}
