//! The `netmanager` commands other than `run`: identity, tokens, members,
//! status. Each talks to the running daemon through the local API
//! ([`crate::api::client`]) or works on files; `main.rs` only parses.

use std::path::Path;

use crate::api::client;
use crate::api::types::{MemberRemoved, Members, TokenCreated, TokenEntry, TokenSpec};
use crate::control::admission::token_file::{append_token, format_rfc3339, parse_ttl, TokenLine};
use crate::control::admission::{actor::unix_now, generate_token, TokenState};
use crate::NetmanagerError;

/// `netmanager id`: the peer id of an identity file (created if missing).
pub fn id(identity: &Path) -> Result<String, NetmanagerError> {
    let keypair = crate::control::identity::load_or_create(identity).map_err(|e| NetmanagerError::Control(e.into()))?;
    Ok(keypair.public().to_peer_id().to_string())
}

/// `netmanager token create`: asks the running authority for a token.
pub fn token_create(socket: &Path, ttl: Option<&str>, uses: Option<u32>, note: String) -> Result<TokenCreated, NetmanagerError> {
    let ttl_secs = ttl.map(parse_ttl).transpose().map_err(|e| NetmanagerError::Usage(format!("--ttl {e}")))?;
    client::post(socket, "/v1/tokens", &TokenSpec { ttl_secs, uses, note })
}

pub fn token_list(socket: &Path) -> Result<Vec<TokenEntry>, NetmanagerError> {
    client::get(socket, "/v1/tokens")
}

pub fn token_revoke(socket: &Path, id: &str) -> Result<TokenEntry, NetmanagerError> {
    client::delete(socket, &format!("/v1/tokens/{id}"))
}

/// `netmanager token generate`: a token for a token file, without a
/// running daemon (bootstrap, or file-managed tokens).
pub fn token_generate(file: Option<&Path>, ttl: Option<&str>, uses: Option<u32>) -> Result<String, NetmanagerError> {
    let token = generate_token().map_err(|e| NetmanagerError::Control(e.into()))?;
    let expires = match ttl {
        Some(ttl) => Some(unix_now().saturating_add(parse_ttl(ttl).map_err(|e| NetmanagerError::Usage(format!("--ttl {e}")))?)),
        None => None,
    };
    if let Some(file) = file {
        append_token(file, &TokenLine { token: token.clone(), expires, uses }).map_err(|e| NetmanagerError::Control(e.into()))?;
    }
    Ok(token)
}

pub fn members_remove(socket: &Path, who: &str) -> Result<MemberRemoved, NetmanagerError> {
    client::delete(socket, &format!("/v1/members/{who}"))
}

/// A token listing as a table.
pub fn render_tokens(tokens: &[TokenEntry]) -> String {
    let now = unix_now();
    let mut out = format!("{:<9} {:<8} {:<21} {:>5} {:>6}  NOTE\n", "ID", "STATE", "EXPIRES", "USED", "LEFT");
    for t in tokens {
        let state = match t.state(now) {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::UsedUp => "used up",
            TokenState::Revoked => "revoked",
        };
        let expires = t.expires.map_or_else(|| "never".to_owned(), format_rfc3339);
        let left = t.uses_left.map_or_else(|| "-".to_owned(), |n| n.to_string());
        out.push_str(&format!("{:<9} {:<8} {:<21} {:>5} {:>6}  {}\n", t.id.to_string(), state, expires, t.used, left, t.note));
    }
    out
}

/// `netmanager status`: the device and, in dynamic mode, the members.
pub fn status(socket: &Path, json: bool) -> Result<String, NetmanagerError> {
    let status: overlay::DeviceStatus = client::get(socket, "/v1/status")?;
    // Static nodes answer 404 here; that is not an error.
    let members: Option<Members> = client::get(socket, "/v1/members").ok();
    if json {
        // The device status stays at the top level (scripts read it); the
        // membership, if any, rides along.
        let mut doc = serde_json::to_value(&status).map_err(|e| NetmanagerError::Usage(e.to_string()))?;
        if let (Some(object), Some(members)) = (doc.as_object_mut(), members) {
            let members = serde_json::to_value(members).map_err(|e| NetmanagerError::Usage(e.to_string()))?;
            object.insert("members".into(), members);
        }
        return serde_json::to_string_pretty(&doc).map_err(|e| NetmanagerError::Usage(e.to_string()));
    }
    let mut out = String::new();
    if let Some(members) = &members {
        out.push_str(&crate::status::render_members(members));
        out.push('\n');
    }
    out.push_str(&crate::status::render(&status));
    Ok(out)
}
