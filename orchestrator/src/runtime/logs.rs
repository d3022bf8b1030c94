//! An instance's output: stdout and stderr, as they arrive, appended to
//! `<state>/logs/<id>.log` across restarts, rotated to `<id>.log.1` past a
//! cap so a chatty workload cannot fill the disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Rotation threshold.
pub const LOG_CAP: u64 = 8 << 20;

/// One instance's log.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    cap: u64,
    file: Mutex<Option<File>>,
    /// Bytes written since the instance first started (across rotations).
    total: AtomicU64,
}

impl Log {
    /// Opens (appending) `<dir>/<id>.log`.
    pub fn open(dir: &Path, id: &str, cap: u64) -> io::Result<Arc<Log>> {
        fs::DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
        let path = dir.join(format!("{id}.log"));
        let file = OpenOptions::new().create(true).append(true).mode(0o640).open(&path)?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Arc::new(Log { path, cap, file: Mutex::new(Some(file)), total: AtomicU64::new(total) }))
    }

    /// Appends bytes, rotating first if the file passed the cap.
    pub fn write(&self, bytes: &[u8]) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let len = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len()).unwrap_or(0);
        if len + bytes.len() as u64 > self.cap {
            let _ = fs::rename(&self.path, self.path.with_extension("log.1"));
            *file = OpenOptions::new().create(true).append(true).mode(0o640).open(&self.path).ok();
        }
        if let Some(f) = file.as_mut() {
            if f.write_all(bytes).is_ok() {
                self.total.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
        }
    }

    /// A line of the runtime's own (restart markers).
    pub fn note(&self, line: &str) {
        self.write(format!("--- grove: {line} ---\n").as_bytes());
    }

    /// The last `tail` bytes (lossy UTF-8) and the total written.
    pub fn tail(&self, tail: u64) -> io::Result<(String, u64)> {
        let mut f = File::open(&self.path)?;
        let len = f.metadata()?.len();
        let from = len.saturating_sub(tail);
        f.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok((String::from_utf8_lossy(&buf).into_owned(), self.total.load(Ordering::Relaxed)))
    }
}
