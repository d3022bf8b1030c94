//! `netmanager keygen`: a new node key on disk (0600), public key on stdout.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use overlay::{PrivateKey, PublicKey};

use crate::NetmanagerError;

/// Writes a fresh key to `path` (never overwriting; a missing parent
/// directory is created 0700) and returns its public half.
pub fn keygen(path: &Path) -> Result<PublicKey, NetmanagerError> {
    if path.exists() {
        return Err(NetmanagerError::KeyExists(path.to_owned()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| NetmanagerError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
    }
    let key = PrivateKey::generate()?;
    key.save_new(path)?;
    Ok(key.public_key())
}

/// The public key of an existing key file.
pub fn pubkey(path: &Path) -> Result<PublicKey, NetmanagerError> {
    Ok(PrivateKey::load(path)?.public_key())
}
