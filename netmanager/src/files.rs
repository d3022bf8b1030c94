//! Secret files on disk, one way: directories created 0700, files created
//! 0600 (never group- or world-readable, checked when read), and atomic
//! replacement that survives a power cut (temp file, fsync, rename, fsync
//! of the directory: the file is always the old content or the new, and
//! the rename itself is durable).
//!
//! These block (fsync on an SD card takes tens of milliseconds): call them
//! at start-up or from a thread that is not the async runtime's.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A secret file could not be read, or anyone besides its owner may access it.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{} is accessible by group/other (mode {mode:03o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
}

/// Fails unless `path` is accessible by its owner only (mode `0?00`).
pub fn check_private(path: &Path) -> Result<(), PrivateFileError> {
    let meta = std::fs::metadata(path).map_err(|source| PrivateFileError::Io { path: path.to_owned(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateFileError::Permissions { path: path.to_owned(), mode });
    }
    Ok(())
}

/// Reads a file that must be accessible by its owner only.
pub fn read_private(path: &Path) -> Result<String, PrivateFileError> {
    check_private(path)?;
    std::fs::read_to_string(path).map_err(|source| PrivateFileError::Io { path: path.to_owned(), source })
}

/// Creates `dir` (and its parents) with mode 0700 if it is missing.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates the parent directory of `path` with mode 0700 if it is missing.
pub fn create_private_dir_for(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => create_private_dir(dir),
        None => Ok(()),
    }
}

/// Writes `bytes` to a new file created 0600 with O_CREAT|O_EXCL (an
/// existing file is never touched), fsynced. A half-written file is removed.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Replaces `path` with `bytes` atomically and durably (0600).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_private_dir_for(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    write_new(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_and_stay_private() {
        let dir = std::env::temp_dir().join(format!("grove-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/state.json");
        write_atomic(&path, b"one").expect("first");
        write_atomic(&path, b"two").expect("second");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(read_private(&path).expect("private"), "two");
        let mode = std::fs::metadata(dir.join("sub")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(matches!(read_private(&path), Err(PrivateFileError::Permissions { mode: 0o640, .. })));
        assert!(write_new(&path, b"x").is_err(), "write_new never overwrites");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
