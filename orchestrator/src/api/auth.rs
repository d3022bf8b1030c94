//! The API's bearer token: a random secret in a 0600 file, made on first
//! start, compared in constant time.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;

/// The secret. `Debug` does not show it.
#[derive(Clone)]
pub struct ApiToken(String);

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// A token from its text (tests, `--token`).
    pub fn new(secret: impl Into<String>) -> ApiToken {
        ApiToken(secret.into())
    }

    /// Reads the token at `path`, or makes one there (0600) if there is none.
    /// A file that others can read is refused: the token is the root's key.
    pub fn load_or_create(path: &Path) -> std::io::Result<ApiToken> {
        match std::fs::metadata(path) {
            Ok(meta) => {
                if meta.permissions().mode() & 0o077 != 0 {
                    let mode = meta.permissions().mode() & 0o777;
                    return Err(std::io::Error::other(format!("{} can be read by others (mode {mode:o}); run `chmod 600 {}`", path.display(), path.display())));
                }
                let text = std::fs::read_to_string(path)?;
                let token = text.trim();
                if token.len() < 16 {
                    return Err(std::io::Error::other(format!("{} holds a token shorter than 16 characters; remove the file to have a new one made", path.display())));
                }
                Ok(ApiToken(token.to_owned()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut raw = [0u8; 32];
                getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(format!("no randomness for the token: {e}")))?;
                let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
                let tmp = path.with_extension("tmp");
                let _ = std::fs::remove_file(&tmp);
                let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
                writeln!(file, "{token}")?;
                file.sync_all()?;
                std::fs::rename(&tmp, path)?;
                tracing::info!(path = %path.display(), "made a new API token");
                Ok(ApiToken(token))
            }
            Err(e) => Err(e),
        }
    }

    /// Constant-time comparison with what a client presented.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}
