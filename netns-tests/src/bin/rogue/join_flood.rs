//! `rogue join-flood`: join attempts against the authority that no token
//! holder would make (F10, F18, F19): frames over the request limit
//! (refused before they are read: the stream fails), a length prefix
//! claiming 16 MiB, a token longer than any token may be, and a burst of
//! wrong tokens from one address (`Refusal::Token` for the first few, then
//! `Refusal::RateLimited`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::anyhow;
use libp2p::PeerId;
use libp2p_identity::Keypair;
use netmanager::control::wire::encode;
use netmanager::control::wire::protocol::{ControlRequest, JoinRequest, MAX_CONTROL_REQUEST, MAX_TOKEN};
use serde_json::{json, Value};

use crate::forge;
use crate::peer::{answer_kind, Peer, Policy};
use crate::raw;

pub struct JoinFloodArgs {
    pub dial: SocketAddr,
    pub authority: PeerId,
    pub n: usize,
    pub oversized: usize,
}

fn join(token: String, name: &str) -> ControlRequest {
    ControlRequest::Join(JoinRequest {
        token,
        name: name.to_owned(),
        wg_public_key: forge::random32(),
    })
}

/// Raw requests beyond the limits; what became of each.
async fn oversized(args: &JoinFloodArgs) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut swarm = raw::build(Keypair::generate_ed25519())?;
    let peer = raw::connect(&mut swarm, args.dial, Duration::from_secs(10)).await?;
    if peer != args.authority {
        return Err(anyhow!("{} is {peer}, not the authority {}", args.dial, args.authority));
    }
    let mut outcomes = BTreeMap::<String, usize>::new();
    for i in 0..args.oversized {
        let bytes = if i % 2 == 0 {
            let body = encode(&join("T".repeat(2 * MAX_CONTROL_REQUEST), "flood")).map_err(|e| anyhow!("{e}"))?;
            raw::frame(&body)
        } else {
            let mut claim = (16u32 << 20).to_be_bytes().to_vec();
            claim.extend(std::iter::repeat_n(b'T', 4096));
            claim
        };
        let outcome = match raw::request(&mut swarm, peer, bytes, Duration::from_secs(5)).await {
            Ok(answer) => format!("answered({} bytes)", answer.len()),
            Err(_) => "refused".to_owned(),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    Ok(outcomes)
}

pub async fn run(args: JoinFloodArgs) -> anyhow::Result<Value> {
    let oversized = oversized(&args).await?;
    let mut peer = Peer::new(Keypair::generate_ed25519(), Policy::stranger())?;
    let authority = peer.connect_authority(args.dial, args.authority).await?;
    let long = peer
        .control(authority, join("L".repeat(MAX_TOKEN + 72), "flood"), Duration::from_secs(5))
        .await;
    // Waves of at most four: the control protocol's stream limit per
    // connection, which would otherwise refuse the rest unread.
    let mut burst = BTreeMap::<String, usize>::new();
    let mut sent = 0usize;
    while sent < args.n {
        let wave: Vec<_> = (sent..args.n.min(sent + 4))
            .map(|i| peer.send_control(authority, join(format!("WrongWrongWrongWrong{i:012}"), &format!("flood-{i}"))))
            .collect();
        sent += wave.len();
        for id in wave {
            let answer = peer
                .wait_for(Duration::from_secs(5), |me| me.take_control(&id))
                .await
                .unwrap_or_else(|| Err("no answer in time".into()));
            *burst.entry(answer_kind(&answer)).or_default() += 1;
        }
    }
    let long_kind = answer_kind(&long);
    Ok(json!({
        "rogue": peer.id.to_string(),
        "authority": authority.to_string(),
        "oversized": oversized,
        "long_token": long_kind,
        "burst": burst,
        "token_refusals": burst.get("Refused(Token)").copied().unwrap_or(0),
        "rate_limited": burst.get("Refused(RateLimited)").copied().unwrap_or(0),
    }))
}
