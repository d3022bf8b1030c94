//! A scratch directory for configs, keys, sockets and logs.

use std::path::{Path, PathBuf};

use crate::{unique_name, Error, Result};

/// A directory under the system temp dir, removed on drop — unless the
/// thread is panicking or `$GROVE_KEEP_SCRATCH` is set, in which case it is
/// kept (and its path printed) so the logs in it can be read after a failed
/// test, or after a benchmark whose failures are counted, not panics.
/// Environment variable that keeps every scratch directory.
pub const KEEP_ENV: &str = "GROVE_KEEP_SCRATCH";

#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates `$TMPDIR/grove-<unique>`.
    pub fn new(tag: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("grove-{}", unique_name(tag)));
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        Ok(ScratchDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os(KEEP_ENV).is_some() {
            eprintln!("keeping {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
