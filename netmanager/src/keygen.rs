//! `netmanager keygen`: a new node key on disk (0600), public key on stdout.

use std::path::Path;

use overlay::{PrivateKey, PublicKey};

use crate::NetmanagerError;

/// Writes a fresh key to `path` (never overwriting) and returns its public half.
pub fn keygen(path: &Path) -> Result<PublicKey, NetmanagerError> {
    let key = PrivateKey::generate()?;
    key.save_new(path)?;
    Ok(key.public_key())
}

/// The public key of an existing key file.
pub fn pubkey(path: &Path) -> Result<PublicKey, NetmanagerError> {
    Ok(PrivateKey::load(path)?.public_key())
}
