//! The node's ed25519 control-plane identity on disk.
//!
//! The file holds one line: the 32-byte ed25519 secret key, standard base64
//! (the same shape as the overlay key file, so admins meet one format). It is
//! the node's name on the mesh (its [`PeerId`]): losing it makes the node a
//! stranger, leaking it lets anyone speak for the node. Hence: created 0600
//! (never overwritten), and refused when group or other may access it.

use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use libp2p_identity::{Keypair, PeerId};

pub use crate::files::PrivateFileError;
use crate::files::{create_private_dir_for, read_private, write_new};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity file: {0}")]
    File(#[from] PrivateFileError),
    #[error(
        "identity file {} is not a grove identity ({reason}); restore it from a backup, \
         or delete it to start over as a new node (new PeerId, re-join needed)",
        path.display()
    )]
    Malformed { path: PathBuf, reason: String },
    #[error("cannot create identity file {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("the operating system's random generator failed: {0}")]
    Random(getrandom::Error),
}

/// Loads the identity at `path`, or creates a fresh one there if the file is
/// missing (a missing parent directory is created 0700).
pub fn load_or_create(path: &Path) -> Result<Keypair, IdentityError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => return load(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(PrivateFileError::Io {
                path: path.to_owned(),
                source,
            }
            .into())
        }
    }
    create_private_dir_for(path).map_err(|source| IdentityError::Create {
        path: path.to_owned(),
        source,
    })?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(IdentityError::Random)?;
    let line = base64::engine::general_purpose::STANDARD.encode(secret);
    let keypair = Keypair::ed25519_from_bytes(secret).map_err(|e| IdentityError::Malformed {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    match write_new(path, format!("{line}\n").as_bytes()) {
        Ok(()) => Ok(keypair),
        // Another process created it between our check and our create: theirs wins.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load(path),
        Err(source) => Err(IdentityError::Create {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The mesh name of a keypair.
pub fn peer_id_of(keypair: &Keypair) -> PeerId {
    keypair.public().to_peer_id()
}

fn load(path: &Path) -> Result<Keypair, IdentityError> {
    let text = read_private(path)?;
    let malformed = |reason: String| IdentityError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| malformed(format!("not base64: {e}")))?;
    if bytes.len() != 32 {
        return Err(malformed(format!("{} bytes, expected 32", bytes.len())));
    }
    Keypair::ed25519_from_bytes(bytes).map_err(|e| malformed(e.to_string()))
}

/// This start's incarnation: one more than the last start's, kept in
/// `path`. Record versions are `incarnation << 32 | sequence`, so they rise
/// across restarts whatever the wall clock says (a Pi without a battery
/// boots in the past). A missing file starts at 1; a corrupt one is an
/// error rather than a silent reset that would make the node's records
/// look old to every peer.
pub fn next_incarnation(path: &Path) -> Result<u32, IdentityError> {
    let last = match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse::<u32>().map_err(|e| IdentityError::Malformed { path: path.to_owned(), reason: format!("incarnation: {e}") })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(source) => return Err(PrivateFileError::Io { path: path.to_owned(), source }.into()),
    };
    let next = last.checked_add(1).ok_or_else(|| IdentityError::Malformed { path: path.to_owned(), reason: "incarnation overflow".into() })?;
    crate::files::write_atomic(path, format!("{next}\n").as_bytes()).map_err(|source| IdentityError::Create { path: path.to_owned(), source })?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("grove-identity-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn create_then_reload_gives_same_peer_id() {
        let dir = scratch("reload");
        let path = dir.join("sub/identity");
        let first = load_or_create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(dir.join("sub"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        let again = load_or_create(&path).expect("reload");
        assert_eq!(peer_id_of(&first), peer_id_of(&again));
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn group_readable_file_is_refused() {
        let dir = scratch("mode");
        let path = dir.join("identity");
        load_or_create(&path).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_or_create(&path)
            .expect_err("0644 must be refused")
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn incarnations_count_up_across_starts() {
        let dir = scratch("incarnation");
        let path = dir.join("incarnation");
        assert_eq!(next_incarnation(&path).expect("first"), 1);
        assert_eq!(next_incarnation(&path).expect("second"), 2);
        std::fs::write(&path, "junk").expect("write");
        assert!(next_incarnation(&path).is_err());
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn garbage_is_refused_not_replaced() {
        let dir = scratch("garbage");
        let path = dir.join("identity");
        create_private_dir_for(&path).expect("dir");
        for junk in ["not base64 at all!\n", "AAAA\n", ""] {
            let _ = std::fs::remove_file(&path);
            write_new(&path, junk.as_bytes()).expect("write");
            let err = load_or_create(&path).expect_err("garbage must be refused");
            assert!(matches!(err, IdentityError::Malformed { .. }), "{err}");
            assert!(err.to_string().contains(&path.display().to_string()));
            assert_eq!(std::fs::read(&path).expect("read"), junk.as_bytes());
        }
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
