//! The API's bearer token (RFC 6750): one secret per root, kept in a file
//! only its owner can read, compared in constant time.
//!
//! The token is the only thing between a stranger on the underlay and the
//! root's deploy API, so the file is created 0600 from the first byte (no
//! window in which it is readable by others), written to a temporary name
//! and linked into place so that a crash never leaves half a token, and a
//! file that group or others can read is refused rather than silently used.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;

/// Random bytes in a new token (256 bits; 43 characters of base64url).
const TOKEN_BYTES: usize = 32;

/// The API token. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ApiToken {
    secret: String,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// A token with a known secret (tests, or a token handed over by other
    /// means). Surrounding whitespace is dropped, as when read from a file.
    pub fn from_secret(secret: impl Into<String>) -> ApiToken {
        ApiToken {
            secret: secret.into().trim().to_owned(),
        }
    }

    /// A new random token: 32 bytes from the OS, base64url without padding.
    pub fn generate() -> io::Result<ApiToken> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no randomness from the OS: {e}")))?;
        Ok(ApiToken {
            secret: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        })
    }

    /// Reads the token at `path` (trimmed), or creates one there if there
    /// is no file (and its directory, 0700, if need be).
    ///
    /// A file that group or others may read or write is refused with the
    /// `chmod` that fixes it: the token may already have leaked, and
    /// quietly tightening the mode would hide that.
    pub fn load_or_create(path: &Path) -> io::Result<ApiToken> {
        match fs::symlink_metadata(path) {
            Ok(_) => ApiToken::load(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => ApiToken::create(path),
            Err(e) => Err(e),
        }
    }

    /// Reads an existing token file, checking its mode.
    pub fn load(path: &Path) -> io::Result<ApiToken> {
        let metadata = fs::metadata(path)?;
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let mode = metadata.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the token file {path} has mode {mode:04o}: group or others can read it; \
                     run `chmod 600 {path}` (and consider replacing the token: delete the file and restart the root)",
                    path = path.display()
                ),
            ));
        }
        let token = ApiToken::from_secret(fs::read_to_string(path)?);
        if token.secret.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the token file {} is empty; delete it and a new token is created", path.display()),
            ));
        }
        Ok(token)
    }

    /// Writes a new token to `path`, which must not exist: a temporary file
    /// created 0600 with `O_EXCL`, synced, then hard-linked to `path` (which
    /// fails rather than replaces if another process got there first; then
    /// that process's token is the one used).
    fn create(path: &Path) -> io::Result<ApiToken> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let token = ApiToken::generate()?;
        let temporary = temporary_name(path);
        let _ = fs::remove_file(&temporary); // a leftover of a crash of this same pid
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
            file.write_all(token.secret.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        })();
        let linked = written.and_then(|()| fs::hard_link(&temporary, path));
        let _ = fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                // The new name must survive a crash too.
                fs::File::open(dir).and_then(|d| d.sync_all())?;
                tracing::info!(path = %path.display(), "made a new API token");
                Ok(token)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => ApiToken::load(path),
            Err(e) => Err(e),
        }
    }

    /// True when `presented` is the secret. Takes the same time wherever
    /// the first difference is (it depends only on the lengths).
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(self.secret.as_bytes(), presented.as_bytes())
    }
}

fn temporary_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

/// Byte equality without an early exit: every byte of the longer input is
/// looked at, and the length difference is folded into the result.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        difference |= x ^ y;
    }
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abc\0"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn debug_redacts_and_generate_is_base64url() {
        let token = ApiToken::generate().expect("randomness");
        assert_eq!(format!("{token:?}"), "ApiToken(<redacted>)");
        assert_eq!(token.secret.len(), 43);
        assert!(
            token.secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{}",
            token.secret
        );
        assert!(token.matches(&token.secret.clone()));
        assert!(!token.matches(""));
    }
}
