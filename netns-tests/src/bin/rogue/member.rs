//! `rogue member`: a member that turned hostile. It joins for real (a
//! `Join` with a real token, so the authority grants it a subnet, name and
//! key), syncs (its record in every `Sync` makes it trusted), connects to
//! every member it learns of, answers probes like a member so nobody
//! suspects it, and then misbehaves ([`crate::misbehave`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ipnet::Ipv4Net;
use libp2p::PeerId;
use libp2p_identity::Keypair;
use netmanager::control::admission::{verify_grant, GrantRules};
use netmanager::control::wire::protocol::{ControlRequest, ControlResponse, JoinRequest, Page, SyncRequest};
use netmanager::control::wire::records::{Gossip, InstanceSet, NodeRecord, SubnetGrant};
use netmanager::control::wire::{Bounded, Signed};
use serde_json::{json, Value};

use crate::forge;
use crate::peer::{answer_kind, source_ip, Peer, Policy, ProbeAnswer, SyncAnswer};

/// Pages asked for at most per sync (a test mesh fits in one).
const MAX_PAGES: usize = 16;
const STEP: Duration = Duration::from_secs(5);

pub struct MemberArgs {
    pub dial: SocketAddr,
    pub authority: PeerId,
    pub token_file: PathBuf,
    pub name: String,
    pub wg_key: Option<String>,
}

/// Another member as the rogue knows it.
#[derive(Clone)]
pub struct Known {
    pub name: String,
    pub version: u64,
    pub control: Vec<SocketAddr>,
    pub signed: Signed<NodeRecord>,
}

/// The joined rogue: its swarm, grant and records.
pub struct Session {
    pub peer: Peer,
    pub authority: PeerId,
    pub grant: Signed<SubnetGrant>,
    pub subnet: Ipv4Net,
    pub name: String,
    /// Where we listen and receive (control and, nominally, tunnel).
    pub addr: SocketAddr,
    /// Our record as first accepted (a stale `me` later still proves
    /// membership, which lets us read back what members hold).
    pub first: Signed<NodeRecord>,
    pub record: Signed<NodeRecord>,
    pub version: u64,
    pub set: Option<Signed<InstanceSet>>,
    pub set_version: u64,
    pub known: BTreeMap<PeerId, Known>,
    /// Every other member's instance sets seen, by signer.
    pub sets: BTreeMap<PeerId, Signed<InstanceSet>>,
    pub sync_answers: BTreeMap<String, usize>,
}

/// Why the rogue could not join (reported, not an error of the rogue).
pub enum Joined {
    Yes(Box<Session>),
    Refused(String),
}

pub async fn join(args: &MemberArgs) -> anyhow::Result<Joined> {
    let token = std::fs::read_to_string(&args.token_file).with_context(|| format!("reading {}", args.token_file.display()))?;
    let wg_public_key = match &args.wg_key {
        Some(key) => B64
            .decode(key.trim())
            .context("--wg-key: not base64")?
            .try_into()
            .map_err(|_| anyhow!("--wg-key: not 32 bytes"))?,
        None => forge::random32(),
    };
    let keypair = Keypair::generate_ed25519();
    let me = keypair.public().to_peer_id();
    let ip = source_ip(args.dial)?;
    let mut peer = Peer::new(keypair.clone(), Policy::stranger())?;
    peer.listen(SocketAddr::new(ip, args.dial.port())).await?;
    let authority = peer.connect_authority(args.dial, args.authority).await?;
    let request = ControlRequest::Join(JoinRequest {
        token: token.trim().to_owned(),
        name: args.name.clone(),
        wg_public_key,
    });
    let grant = match peer.control(authority, request, Duration::from_secs(10)).await {
        Ok(ControlResponse::Joined { grant, .. }) => grant,
        Ok(ControlResponse::Refused(refusal)) => return Ok(Joined::Refused(format!("{refusal:?}"))),
        other => return Err(anyhow!("the join was answered with {}", answer_kind(&other))),
    };
    let info = verify_grant(&grant, None, &authority, &me, &GrantRules::default()).map_err(|e| anyhow!("the authority's grant: {e}"))?;
    let version = 1u64 << 32 | 1;
    let addr = SocketAddr::new(ip, args.dial.port());
    let record = forge::record(&keypair, grant.clone(), vec![addr], vec![addr], version)?;
    let mut session = Session {
        peer,
        authority,
        grant,
        subnet: info.subnet,
        name: info.name,
        addr,
        first: record.clone(),
        record,
        version,
        set: None,
        set_version: version,
        known: BTreeMap::new(),
        sets: BTreeMap::new(),
        sync_answers: BTreeMap::new(),
    };
    session.serve_as_member();
    session.peer.subscribe()?;
    session.sync(authority).await;
    session.peer.resubscribe()?;
    session.connect_all().await;
    session.peer.resubscribe()?;
    session.peer.pump(Duration::from_secs(1)).await;
    Ok(Joined::Yes(Box::new(session)))
}

impl Session {
    pub fn me(&self) -> PeerId {
        self.peer.id
    }

    /// Probes are acked with our version; syncs get our own records.
    pub fn serve_as_member(&mut self) {
        let page = Page {
            nodes: Bounded::truncate(vec![self.record.clone()]),
            instances: Bounded::truncate(self.set.iter().cloned().collect()),
            ..Page::default()
        };
        self.peer.policy.sync = SyncAnswer::Page(Box::new(page));
        self.peer.policy.probe = ProbeAnswer::Ack { version: self.version };
    }

    /// Syncs with `peer`, every page, with our current record.
    pub async fn sync(&mut self, peer: PeerId) -> Option<Vec<Page>> {
        let me = self.record.clone();
        self.sync_as(peer, me).await
    }

    /// Syncs presenting `me` (which need not be our current record).
    pub async fn sync_as(&mut self, peer: PeerId, me: Signed<NodeRecord>) -> Option<Vec<Page>> {
        let mut after = None;
        let mut pages = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self
                .peer
                .control(
                    peer,
                    ControlRequest::Sync(SyncRequest {
                        me: me.clone(),
                        after: after.clone(),
                    }),
                    STEP,
                )
                .await;
            *self
                .sync_answers
                .entry(answer_kind(&answer).split('(').next().unwrap_or("").to_owned())
                .or_default() += 1;
            let Ok(ControlResponse::Page(page)) = answer else {
                return (!pages.is_empty()).then_some(pages);
            };
            self.learn(&page);
            after = page.next.clone();
            pages.push(page);
            if after.is_none() {
                break;
            }
        }
        Some(pages)
    }

    /// Takes note of records (from a page or gossip).
    pub fn learn(&mut self, page: &Page) {
        for signed in page.nodes.iter() {
            self.learn_record(signed);
        }
        for signed in page.instances.iter() {
            if let Ok(v) = signed.verify() {
                if v.signer != self.me() {
                    self.sets.insert(v.signer, signed.clone());
                }
            }
        }
    }

    /// True when the record was new to us (a higher version).
    pub fn learn_record(&mut self, signed: &Signed<NodeRecord>) -> bool {
        let Ok(v) = signed.verify() else { return false };
        if v.signer == self.me() {
            return false;
        }
        let name = v.value.grant.verify().map(|g| g.value.name).unwrap_or_default();
        let newer = self.known.get(&v.signer).is_none_or(|k| k.version < v.value.version);
        if newer {
            self.known.insert(
                v.signer,
                Known {
                    name,
                    version: v.value.version,
                    control: v.value.control.to_vec(),
                    signed: signed.clone(),
                },
            );
        }
        newer
    }

    /// New records in the gossip received since the last call.
    pub fn drain_gossip(&mut self) -> usize {
        let inbox = std::mem::take(&mut self.peer.inbox);
        let mut fresh = 0;
        for (_, gossip) in inbox {
            match gossip {
                Gossip::Node(signed) => fresh += usize::from(self.learn_record(&signed)),
                Gossip::Instances(signed) => {
                    if let Ok(v) = signed.verify() {
                        self.sets.insert(v.signer, signed);
                    }
                }
                _ => {}
            }
        }
        fresh
    }

    /// Dials every known member and syncs with it (which makes us trusted there).
    pub async fn connect_all(&mut self) {
        let others: Vec<(PeerId, Vec<SocketAddr>)> = self
            .known
            .iter()
            .filter(|(p, _)| **p != self.authority)
            .map(|(p, k)| (*p, k.control.clone()))
            .collect();
        for (peer, addrs) in others {
            if self.peer.connect_peer(peer, &addrs, STEP).await.is_ok() {
                self.sync(peer).await;
            }
        }
    }

    /// Signs our record anew at `version` with these addresses.
    pub fn sign_record(
        &mut self,
        version: u64,
        endpoints: Vec<SocketAddr>,
        control: Vec<SocketAddr>,
    ) -> anyhow::Result<Signed<NodeRecord>> {
        forge::record(&self.peer.keypair, self.grant.clone(), endpoints, control, version)
    }

    /// Publishes a new version of our record (our real addresses).
    pub fn republish(&mut self) -> anyhow::Result<()> {
        self.version += 1;
        let addr = self.addr;
        self.record = self.sign_record(self.version, vec![addr], vec![addr])?;
        self.serve_as_member();
        let bytes = forge::gossip(&Gossip::Node(self.record.clone()))?;
        self.peer.publish(bytes).map_err(|e| anyhow!("publish: {e}"))
    }

    /// Announces `specs` as our instance set.
    pub fn announce(&mut self, specs: Vec<dns::InstanceSpec>) -> anyhow::Result<()> {
        self.set_version += 1;
        let set = forge::instance_set(&self.peer.keypair, self.set_version, specs)?;
        self.set = Some(set.clone());
        self.serve_as_member();
        let bytes = forge::gossip(&Gossip::Instances(set))?;
        self.peer.publish(bytes).map_err(|e| anyhow!("publish: {e}"))
    }

    /// Our own record's version as `peer` holds it (read back through a
    /// sync that presents our first record: stale, but it proves us).
    pub async fn held_version(&mut self, peer: PeerId) -> Option<u64> {
        self.held_record(peer).await.map(|r| r.version)
    }

    /// Our record as `peer` holds it.
    pub async fn held_record(&mut self, peer: PeerId) -> Option<NodeRecord> {
        let first = self.first.clone();
        let pages = self.sync_as(peer, first).await?;
        let me = self.me();
        pages
            .iter()
            .flat_map(|p| p.nodes.iter())
            .filter_map(|s| s.verify().ok())
            .find(|v| v.signer == me)
            .map(|v| v.value)
    }

    /// Every member we are connected to (the authority included).
    pub fn connected_members(&self) -> Vec<PeerId> {
        self.known
            .keys()
            .copied()
            .chain(std::iter::once(self.authority))
            .filter(|p| self.peer.swarm.is_connected(p))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    pub fn summary(&self) -> Value {
        let mut names: Vec<&str> = self.known.values().map(|k| k.name.as_str()).collect();
        names.sort();
        json!({
            "joined": true,
            "peer_id": self.me().to_string(),
            "name": self.name,
            "subnet": self.subnet.to_string(),
            "members_known": names,
            "connected": self.connected_members().len(),
            "sync_answers": self.sync_answers,
            "seen": self.peer.seen,
        })
    }
}
