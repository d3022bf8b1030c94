//! The admission authority: who may join (join tokens), which overlay subnet
//! each member owns (a /26 from 10.18.0.0 upward, Oakestra's plan), and the
//! signed grant that proves it. A node puts its grant into its own signed
//! record; peers accept the node's subnet only if [`verify_grant`] agrees, so
//! nobody can claim addresses the authority did not hand out.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use libp2p_identity::{Keypair, PeerId};
use serde::{Deserialize, Serialize};

use super::identity::{create_private_dir_for, write_new, PrivateFileError};
pub use super::tokens::{generate_token, Refusal, TokenList};
use super::signed::{RecordKind, Signed, SignedError};

/// "The authority gives `node` the subnet `subnet`", signed by the authority.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubnetGrant {
    /// `PeerId::to_bytes()` of the grantee.
    pub node: Vec<u8>,
    pub subnet: Ipv4Net,
    pub issued_unix_ms: u64,
}

impl RecordKind for SubnetGrant {
    const KIND: &'static str = "grove/grant/1";
}

impl SubnetGrant {
    pub fn node_peer_id(&self) -> Result<PeerId, AdmissionError> {
        PeerId::from_bytes(&self.node).map_err(AdmissionError::BadPeerId)
    }
}


/// Peer ids in errors are strings: a `PeerId` is 80 bytes and would bloat every `Result`.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("{origin}, line {line}: {reason}")]
    TokenSyntax {
        origin: String,
        line: usize,
        reason: String,
    },
    #[error("join token file: {0}")]
    TokenFile(#[from] PrivateFileError),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("cannot cut {pool} into /{prefix_len} subnets; the subnet prefix must lie between the pool's and /30")]
    PoolShape { pool: Ipv4Net, prefix_len: u8 },
    #[error(
        "all /{prefix_len} subnets of {pool} are granted; release departed nodes \
         or configure a larger pool"
    )]
    PoolExhausted { pool: Ipv4Net, prefix_len: u8 },
    #[error("cannot grant {subnet} to {node}: {reason}")]
    Reserve {
        node: String,
        subnet: Ipv4Net,
        reason: String,
    },
    #[error(
        "admission state {}: {reason}; fix the file or move it aside (without it every \
         grant is forgotten and subnets may be handed out twice)",
        path.display()
    )]
    StateCorrupt { path: PathBuf, reason: String },
    #[error("admission state {}: {source}", path.display())]
    StateIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("grant: {0}")]
    Signed(#[from] SignedError),
    #[error("grant names an invalid peer id: {0}")]
    BadPeerId(libp2p_identity::ParseError),
    #[error("grant signed by {signer}, which is not the cluster authority {authority}")]
    NotAuthority { signer: String, authority: String },
    #[error("grant is for node {grant_for}, not for {node}")]
    WrongNode { grant_for: String, node: String },
    #[error("the operating system's random generator failed: {0}")]
    Random(getrandom::Error),
}


/// Cuts a pool into equal subnets and remembers who owns which.
#[derive(Clone, Debug)]
pub struct SubnetPool {
    pool: Ipv4Net,
    prefix_len: u8,
    by_node: BTreeMap<PeerId, Ipv4Net>,
    by_start: BTreeMap<u32, PeerId>,
}

impl Default for SubnetPool {
    /// Oakestra's plan: /26 node subnets out of 10.18.0.0/16 (1024 of them).
    fn default() -> Self {
        let pool = Ipv4Net::new_assert(Ipv4Addr::new(10, 18, 0, 0), 16);
        SubnetPool {
            pool,
            prefix_len: 26,
            by_node: BTreeMap::new(),
            by_start: BTreeMap::new(),
        }
    }
}

impl SubnetPool {
    /// `prefix_len` at most 30: a subnet needs its bridge (.1) and workloads.
    pub fn new(pool: Ipv4Net, prefix_len: u8) -> Result<SubnetPool, AdmissionError> {
        let pool = pool.trunc();
        if prefix_len < pool.prefix_len() || prefix_len > 30 {
            return Err(AdmissionError::PoolShape { pool, prefix_len });
        }
        Ok(SubnetPool {
            pool,
            prefix_len,
            ..SubnetPool::default()
        })
    }

    /// The subnet of `node`: the one it already has, else the lowest free one.
    pub fn grant(&mut self, node: &PeerId) -> Result<Ipv4Net, AdmissionError> {
        if let Some(subnet) = self.by_node.get(node) {
            return Ok(*subnet);
        }
        let step = 1u64 << (32 - self.prefix_len);
        let count = 1u64 << (self.prefix_len - self.pool.prefix_len());
        let base = u64::from(u32::from(self.pool.network()));
        // Starts are aligned and sorted, so the first mismatch is the lowest gap.
        let mut index = 0u64;
        for &start in self.by_start.keys() {
            if u64::from(start) != base + index * step {
                break;
            }
            index += 1;
        }
        let start = u32::try_from(base + index * step)
            .ok()
            .filter(|_| index < count);
        let subnet = start.and_then(|s| Ipv4Net::new(Ipv4Addr::from(s), self.prefix_len).ok());
        let Some(subnet) = subnet else {
            return Err(AdmissionError::PoolExhausted {
                pool: self.pool,
                prefix_len: self.prefix_len,
            });
        };
        self.insert(*node, subnet);
        Ok(subnet)
    }

    /// Forgets `node`'s subnet so it can be handed out again.
    pub fn release(&mut self, node: &PeerId) {
        if let Some(subnet) = self.by_node.remove(node) {
            self.by_start.remove(&u32::from(subnet.network()));
        }
    }

    /// Records an existing grant (restoring state). Refuses subnets of the
    /// wrong size or alignment, outside the pool, owned by another node, or
    /// a second subnet for the same node.
    pub fn reserve(&mut self, node: &PeerId, subnet: Ipv4Net) -> Result<(), AdmissionError> {
        let refuse = |reason: String| AdmissionError::Reserve {
            node: node.to_string(),
            subnet,
            reason,
        };
        if subnet.prefix_len() != self.prefix_len || subnet.trunc() != subnet {
            return Err(refuse(format!(
                "not a /{} subnet of the pool",
                self.prefix_len
            )));
        }
        if !self.pool.contains(&subnet) {
            return Err(refuse(format!("outside the pool {}", self.pool)));
        }
        let owner = self.by_start.get(&u32::from(subnet.network()));
        match (self.by_node.get(node), owner) {
            (Some(have), _) if *have != subnet => {
                Err(refuse(format!("the node already holds {have}")))
            }
            (_, Some(owner)) if owner != node => Err(refuse(format!("already granted to {owner}"))),
            _ => {
                self.insert(*node, subnet);
                Ok(())
            }
        }
    }

    pub fn subnet_of(&self, node: &PeerId) -> Option<Ipv4Net> {
        self.by_node.get(node).copied()
    }

    pub fn granted(&self) -> impl Iterator<Item = (&PeerId, &Ipv4Net)> {
        self.by_node.iter()
    }

    fn insert(&mut self, node: PeerId, subnet: Ipv4Net) {
        self.by_node.insert(node, subnet);
        self.by_start.insert(u32::from(subnet.network()), node);
    }
}

/// The persisted grants: JSON, so an admin can read and repair them.
#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    grants: Vec<StateGrant>,
}

#[derive(Serialize, Deserialize)]
struct StateGrant {
    node: String,
    subnet: Ipv4Net,
}

/// The cluster's admission authority: checks tokens, hands out subnets,
/// signs grants, and keeps the grants on disk so a restart changes nothing.
#[derive(Debug)]
pub struct Authority {
    keypair: Keypair,
    tokens: TokenList,
    pool: SubnetPool,
    state_path: Option<PathBuf>,
}

impl Authority {
    /// Restores the grants in `state_path` (if the file exists) into `pool`.
    pub fn new(
        keypair: Keypair,
        tokens: TokenList,
        mut pool: SubnetPool,
        state_path: Option<PathBuf>,
    ) -> Result<Authority, AdmissionError> {
        if let Some(path) = &state_path {
            restore(path, &mut pool)?;
        }
        Ok(Authority {
            keypair,
            tokens,
            pool,
            state_path,
        })
    }

    /// Admits `node` presenting `token` at `now_unix_ms`: checks the token,
    /// allocates (or re-finds) the subnet, persists the state before
    /// returning, and returns the signed grant.
    pub fn admit(
        &mut self,
        node: &PeerId,
        token: &str,
        now_unix_ms: u64,
    ) -> Result<Signed<SubnetGrant>, AdmissionError> {
        self.tokens.check(token, now_unix_ms / 1000)?;
        self.grant(node, now_unix_ms)
    }

    /// Grants the authority its own subnet (it is a member too), no token.
    pub fn admit_self(&mut self, now_unix_ms: u64) -> Result<Signed<SubnetGrant>, AdmissionError> {
        self.grant(&self.peer_id(), now_unix_ms)
    }

    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    pub fn pool(&self) -> &SubnetPool {
        &self.pool
    }

    /// Swaps in a re-read token list (e.g. after the admin edited the file).
    pub fn set_tokens(&mut self, tokens: TokenList) {
        self.tokens = tokens;
    }

    fn grant(
        &mut self,
        node: &PeerId,
        now_unix_ms: u64,
    ) -> Result<Signed<SubnetGrant>, AdmissionError> {
        let is_new = self.pool.subnet_of(node).is_none();
        let subnet = self.pool.grant(node)?;
        if is_new {
            // A grant that is not on disk must not leave this function.
            if let Err(e) = self.persist() {
                self.pool.release(node);
                return Err(e);
            }
        }
        let grant = SubnetGrant {
            node: node.to_bytes(),
            subnet,
            issued_unix_ms: now_unix_ms,
        };
        Ok(Signed::sign(&grant, &self.keypair)?)
    }

    /// Temp file (0600) + fsync + rename + fsync of the directory: the file
    /// is always the old or the new state, never half of one.
    fn persist(&self) -> Result<(), AdmissionError> {
        let Some(path) = &self.state_path else {
            return Ok(());
        };
        let io_err = |source| AdmissionError::StateIo {
            path: path.clone(),
            source,
        };
        let grants = self.pool.granted();
        let grants = grants
            .map(|(n, s)| StateGrant {
                node: n.to_string(),
                subnet: *s,
            })
            .collect();
        let json = serde_json::to_vec_pretty(&StateFile { version: 1, grants })
            .map_err(|e| io_err(e.into()))?;
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        create_private_dir_for(path).map_err(io_err)?;
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(io_err(e)),
            _ => {}
        }
        write_new(&tmp, &json).map_err(io_err)?;
        std::fs::rename(&tmp, path).map_err(io_err)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err)
    }
}

/// Loads persisted grants into `pool`; a missing file is a fresh authority.
fn restore(path: &Path, pool: &mut SubnetPool) -> Result<(), AdmissionError> {
    let corrupt = |reason: String| AdmissionError::StateCorrupt {
        path: path.to_owned(),
        reason,
    };
    let text = match std::fs::read_to_string(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(AdmissionError::StateIo {
                path: path.to_owned(),
                source,
            })
        }
        Ok(text) => text,
    };
    let state: StateFile = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if state.version != 1 {
        return Err(corrupt(format!("unknown version {}", state.version)));
    }
    for g in state.grants {
        let node: PeerId = g
            .node
            .parse()
            .map_err(|e| corrupt(format!("peer id {:?}: {e}", g.node)))?;
        pool.reserve(&node, g.subnet)
            .map_err(|e| corrupt(e.to_string()))?;
    }
    Ok(())
}

/// Checks a grant presented inside someone's node record: signed by
/// `authority`, for `node`. Returns the subnet `node` may use.
pub fn verify_grant(
    grant: &Signed<SubnetGrant>,
    authority: &PeerId,
    node: &PeerId,
) -> Result<Ipv4Net, AdmissionError> {
    let verified = grant.verify()?;
    if verified.signer != *authority {
        let (signer, authority) = (verified.signer.to_string(), authority.to_string());
        return Err(AdmissionError::NotAuthority { signer, authority });
    }
    let grant_for = verified.value.node_peer_id()?;
    if grant_for != *node {
        let (grant_for, node) = (grant_for.to_string(), node.to_string());
        return Err(AdmissionError::WrongNode { grant_for, node });
    }
    Ok(verified.value.subnet)
}


#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const TOK_A: &str = "aaaaaaaaaaaaaaaa-1";
    const TOK_B: &str = "bbbbbbbbbbbbbbbb.2";

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("grove-admission-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn authority(state: Option<PathBuf>, kp: Keypair) -> Authority {
        let tokens = TokenList::parse(&format!("{TOK_A}\n{TOK_B} 1000\n")).expect("tokens");
        Authority::new(kp, tokens, SubnetPool::default(), state).expect("authority")
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("net")
    }

    #[test]
    fn pool_allocates_upward_and_is_idempotent() {
        let mut pool = SubnetPool::default();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        assert_eq!(pool.grant(&a).expect("a"), net("10.18.0.0/26"));
        assert_eq!(pool.grant(&b).expect("b"), net("10.18.0.64/26"));
        assert_eq!(pool.grant(&a).expect("a again"), net("10.18.0.0/26"));
        pool.release(&a);
        assert_eq!(pool.grant(&c).expect("c"), net("10.18.0.0/26"));
        assert!(pool.reserve(&a, net("10.18.0.64/26")).is_err(), "taken");
        assert!(pool.reserve(&a, net("10.19.0.0/26")).is_err(), "outside");
        assert!(
            pool.reserve(&a, net("10.18.0.32/27")).is_err(),
            "wrong size"
        );
        let mut small = SubnetPool::new(net("10.18.0.0/25"), 26).expect("pool");
        small.grant(&a).expect("1");
        small.grant(&b).expect("2");
        assert!(matches!(
            small.grant(&c),
            Err(AdmissionError::PoolExhausted { .. })
        ));
        assert!(SubnetPool::new(net("10.18.0.0/16"), 15).is_err());
    }

    #[test]
    fn admit_checks_tokens_and_grants_stay_put() {
        let mut auth = authority(None, Keypair::generate_ed25519());
        let node = PeerId::random();
        let refused = auth
            .admit(&node, "cccccccccccccccccc", 0)
            .expect_err("unknown");
        assert!(matches!(
            refused,
            AdmissionError::Refused(Refusal::UnknownToken)
        ));
        let expired = auth.admit(&node, TOK_B, 1_000_000).expect_err("expired");
        assert!(matches!(
            expired,
            AdmissionError::Refused(Refusal::Expired { at: 1000 })
        ));
        let me = auth.admit_self(5).expect("self");
        let first = auth.admit(&node, TOK_A, 10).expect("admit");
        let again = auth.admit(&node, TOK_B, 20).expect("re-admit");
        let me_sub = verify_grant(&me, &auth.peer_id(), &auth.peer_id()).expect("self grant");
        assert_eq!(me_sub, net("10.18.0.0/26"));
        assert_eq!(
            verify_grant(&first, &auth.peer_id(), &node).expect("v"),
            net("10.18.0.64/26")
        );
        assert_eq!(
            verify_grant(&again, &auth.peer_id(), &node).expect("v"),
            net("10.18.0.64/26")
        );
    }

    #[test]
    fn restart_keeps_grants_and_continues_without_overlap() {
        let dir = scratch("restart");
        let state = dir.join("state/grants.json");
        let kp = Keypair::generate_ed25519();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut auth = authority(Some(state.clone()), kp.clone());
        auth.admit(&a, TOK_A, 0).expect("a");
        auth.admit(&b, TOK_A, 0).expect("b");
        let mode = std::fs::metadata(&state)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(auth);
        let mut auth = authority(Some(state.clone()), kp);
        assert_eq!(auth.pool().subnet_of(&b), Some(net("10.18.0.64/26")));
        let g = auth.admit(&c, TOK_A, 0).expect("c");
        assert_eq!(
            verify_grant(&g, &auth.peer_id(), &c).expect("v"),
            net("10.18.0.128/26")
        );
        let g = auth.admit(&a, TOK_A, 0).expect("a again");
        assert_eq!(
            verify_grant(&g, &auth.peer_id(), &a).expect("v"),
            net("10.18.0.0/26")
        );
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn corrupt_state_is_an_error_not_a_reset() {
        let dir = scratch("corrupt");
        let state = dir.join("grants.json");
        create_private_dir_for(&state).expect("dir");
        let overlap = format!(
            r#"{{"version":1,"grants":[{{"node":"{}","subnet":"10.18.0.0/26"}},{{"node":"{}","subnet":"10.18.0.0/26"}}]}}"#,
            PeerId::random(),
            PeerId::random()
        );
        for junk in [
            "{not json",
            r#"{"version":2,"grants":[]}"#,
            r#"{"version":1,"grants":[{"node":"x","subnet":"10.18.0.0/26"}]}"#,
            &overlap,
        ] {
            std::fs::write(&state, junk).expect("write");
            let err = Authority::new(
                Keypair::generate_ed25519(),
                TokenList::default(),
                SubnetPool::default(),
                Some(state.clone()),
            )
            .expect_err("corrupt");
            assert!(matches!(err, AdmissionError::StateCorrupt { .. }), "{err}");
            assert!(err.to_string().contains("grants.json"), "{err}");
        }
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn verify_grant_rejects_wrong_node_wrong_signer_and_tampering() {
        let mut auth = authority(None, Keypair::generate_ed25519());
        let (node, other) = (PeerId::random(), PeerId::random());
        let grant = auth.admit(&node, TOK_A, 0).expect("admit");
        let wrong_node = verify_grant(&grant, &auth.peer_id(), &other).expect_err("other node");
        assert!(matches!(wrong_node, AdmissionError::WrongNode { .. }));
        let rogue = Keypair::generate_ed25519();
        let forged = SubnetGrant {
            node: node.to_bytes(),
            subnet: net("10.18.0.0/26"),
            issued_unix_ms: 0,
        };
        let forged = Signed::sign(&forged, &rogue).expect("sign");
        let err = verify_grant(&forged, &auth.peer_id(), &node).expect_err("rogue");
        assert!(matches!(err, AdmissionError::NotAuthority { .. }));
        let mut bytes = grant.to_bytes().expect("enc");
        bytes[3] ^= 0x40;
        let tampered = Signed::<SubnetGrant>::from_bytes(&bytes).expect("dec");
        let err = verify_grant(&tampered, &auth.peer_id(), &node).expect_err("tampered");
        assert!(
            matches!(err, AdmissionError::Signed(SignedError::BadSignature)),
            "{err}"
        );
    }
}
