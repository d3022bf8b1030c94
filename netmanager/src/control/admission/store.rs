//! The authority's state on disk: `authority.json` (grants, token hashes,
//! revocations; JSON so an admin can read it) and `authority.id`, written
//! once when the node first becomes an authority. A state directory that
//! has the marker but lost the state is refused at start: a silently reset
//! authority would hand out subnets and names that members still hold.
//!
//! Blocking (fsync): used at start-up and from the admission actor's thread.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use super::authority::AuthorityState;
use super::AdmissionError;
use crate::files::write_atomic;

const STATE_FILE: &str = "authority.json";
const MARKER_FILE: &str = "authority.id";
const STATE_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    #[serde(flatten)]
    state: AuthorityState,
}

/// Where the authority's state lives.
#[derive(Clone, Debug)]
pub struct AuthorityStore {
    path: PathBuf,
    marker: PathBuf,
}

impl AuthorityStore {
    /// Opens the state in `state_dir`: the saved state, a fresh one on the
    /// first start, an error if the state is gone but the marker is not
    /// (unless `reset`).
    pub fn open(state_dir: &Path, authority: &PeerId, reset: bool) -> Result<(AuthorityStore, AuthorityState), AdmissionError> {
        let store = AuthorityStore { path: state_dir.join(STATE_FILE), marker: state_dir.join(MARKER_FILE) };
        let io = |path: &Path, source| AdmissionError::StateIo { path: path.to_owned(), source };
        let state = match std::fs::read_to_string(&store.path) {
            Ok(text) => store.parse(&text)?,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if store.marker.exists() && !reset {
                    return Err(AdmissionError::StateMissing { path: store.path.clone(), marker: store.marker.clone() });
                }
                let fresh = AuthorityState::default();
                store.save(&fresh)?;
                write_atomic(&store.marker, format!("{authority}\n").as_bytes()).map_err(|e| io(&store.marker, e))?;
                fresh
            }
            Err(source) => return Err(io(&store.path, source)),
        };
        Ok((store, state))
    }

    fn parse(&self, text: &str) -> Result<AuthorityState, AdmissionError> {
        let corrupt = |reason: String| AdmissionError::StateCorrupt { path: self.path.clone(), reason };
        let file: StateFile = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        if file.version != STATE_VERSION {
            return Err(corrupt(format!("unknown version {} (this netmanager writes {STATE_VERSION})", file.version)));
        }
        Ok(file.state)
    }

    /// Replaces the saved state (atomic and durable, 0600).
    pub fn save(&self, state: &AuthorityState) -> Result<(), AdmissionError> {
        let io = |source| AdmissionError::StateIo { path: self.path.clone(), source };
        let json = serde_json::to_vec_pretty(&StateFile { version: STATE_VERSION, state: state.clone() }).map_err(|e| io(e.into()))?;
        write_atomic(&self.path, &json).map_err(io)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("grove-authority-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn state_survives_restarts_and_a_lost_file_is_refused() {
        let dir = scratch("lost");
        let me = PeerId::random();
        let (store, mut state) = AuthorityStore::open(&dir, &me, false).expect("fresh");
        state.next_serial = 7;
        store.save(&state).expect("save");
        let mode = std::fs::metadata(store.path()).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (_, back) = AuthorityStore::open(&dir, &me, false).expect("reopen");
        assert_eq!(back.next_serial, 7);
        // F26: deleting the grants must not reset the authority silently.
        std::fs::remove_file(dir.join(STATE_FILE)).expect("delete");
        let err = AuthorityStore::open(&dir, &me, false).expect_err("missing state");
        assert!(matches!(err, AdmissionError::StateMissing { .. }), "{err}");
        assert!(err.to_string().contains("--reset-authority"), "{err}");
        AuthorityStore::open(&dir, &me, true).expect("explicit reset");
        std::fs::write(dir.join(STATE_FILE), "{not json").expect("write");
        assert!(matches!(AuthorityStore::open(&dir, &me, false), Err(AdmissionError::StateCorrupt { .. })));
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
