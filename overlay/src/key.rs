//! Node keys: x25519 static keys in WireGuard's base64 form, kept on disk 0600.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use boringtun::x25519;

use crate::OverlayError;

/// A node's private x25519 key. Never printed; `Debug` shows only the public half.
#[derive(Clone)]
pub struct PrivateKey(x25519::StaticSecret);

/// A peer's public x25519 key, shown and parsed in WireGuard's base64 form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PrivateKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, OverlayError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| OverlayError::Io {
            context: "reading random bytes for a new key",
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519::StaticSecret::from(bytes))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519::PublicKey::from(&self.0).to_bytes())
    }

    /// The base64 text written to key files (same format as `wg genkey`).
    pub fn to_base64(&self) -> String {
        B64.encode(self.0.to_bytes())
    }

    pub(crate) fn secret(&self) -> &x25519::StaticSecret {
        &self.0
    }

    /// Loads a key file, refusing files that group or others can read.
    pub fn load(path: &Path) -> Result<Self, OverlayError> {
        let file_err = |source| OverlayError::KeyFile {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(file_err)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(OverlayError::KeyFilePermissions {
                path: path.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(file_err)?;
        text.trim().parse()
    }

    /// Writes the key to a new file with mode 0600. An existing file is never
    /// overwritten: losing a node key silently would cut the node off the mesh.
    pub fn save_new(&self, path: &Path) -> Result<(), OverlayError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| OverlayError::KeyFile {
                path: path.to_owned(),
                source,
            })?;
        writeln!(file, "{}", self.to_base64()).map_err(|source| OverlayError::KeyFile {
            path: path.to_owned(),
            source,
        })
    }
}

impl FromStr for PrivateKey {
    type Err = OverlayError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode32(s).map(Self::from_bytes)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(public {})", self.public_key())
    }
}

impl PublicKey {
    pub(crate) fn to_x25519(self) -> x25519::PublicKey {
        x25519::PublicKey::from(self.0)
    }

    /// First characters of the base64 form, for log lines.
    pub fn short(&self) -> String {
        self.to_string().chars().take(8).collect()
    }
}

impl FromStr for PublicKey {
    type Err = OverlayError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode32(s).map(PublicKey)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&B64.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn decode32(text: &str) -> Result<[u8; 32], OverlayError> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| OverlayError::InvalidKey(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|v: Vec<u8>| OverlayError::InvalidKey(format!("decodes to {} bytes", v.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_matches_wireguard_format() {
        let key = PrivateKey::generate().expect("random");
        let text = key.to_base64();
        assert_eq!(text.len(), 44, "WireGuard keys are 44 base64 characters");
        let back: PrivateKey = text.parse().expect("parse");
        assert_eq!(back.public_key(), key.public_key());
        let public: PublicKey = key.public_key().to_string().parse().expect("parse public");
        assert_eq!(public, key.public_key());
    }

    #[test]
    fn known_vector_from_rfc7748() {
        // RFC 7748 section 6.1: Alice's private and public key.
        let private = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let public = hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        assert_eq!(PrivateKey::from_bytes(private).public_key().0, public);
    }

    #[test]
    fn rejects_garbage_and_wrong_length() {
        assert!("not base64!".parse::<PublicKey>().is_err());
        assert!(B64.encode([1u8; 31]).parse::<PublicKey>().is_err());
    }

    #[test]
    fn key_file_is_0600_and_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("grove-key-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("node.key");
        let _ = std::fs::remove_file(&path);
        let key = PrivateKey::generate().expect("random");
        key.save_new(&path).expect("save");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(key.save_new(&path).is_err(), "existing key must not be overwritten");
        let loaded = PrivateKey::load(&path).expect("load");
        assert_eq!(loaded.public_key(), key.public_key());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            PrivateKey::load(&path),
            Err(OverlayError::KeyFilePermissions { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
        }
        out
    }
}
