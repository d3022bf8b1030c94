//! `/v1/tokens` and `/v1/grants` on the admission authority: join tokens
//! with an expiry and a use count, listed and revoked; the grants made.
//! An orchestrator acting as a site's admission authority uses these
//! instead of a copy of the authority.
//!
//! ```sh
//! curl --unix-socket /run/grove/netmanager.sock http://netmanager/v1/tokens \
//!      -d '{"ttl_secs":86400,"uses":1,"note":"camera 7"}'
//! ```

use super::routes::json;
use super::types::{GrantEntry, TokenCreated, TokenEntry, TokenId, TokenSpec};
use super::{ApiError, ApiState};

pub(super) async fn create(state: &ApiState, body: &[u8]) -> Result<TokenCreated, ApiError> {
    let spec: TokenSpec = if body.iter().all(u8::is_ascii_whitespace) { TokenSpec::default() } else { json(body, "token")? };
    let (token, entry) = state.admission()?.create_token(spec).await?;
    tracing::info!(id = %entry.id, uses = ?entry.uses_left, expires = ?entry.expires, "join token created");
    let join = state.dynamic("")?.join_hint();
    Ok(TokenCreated { token, entry, join })
}

pub(super) async fn list(state: &ApiState) -> Result<Vec<TokenEntry>, ApiError> {
    Ok(state.admission()?.tokens().await?)
}

pub(super) async fn revoke(state: &ApiState, id: &str) -> Result<TokenEntry, ApiError> {
    let id: TokenId = id.parse()?;
    let entry = state.admission()?.revoke_token(id).await?;
    tracing::info!(%id, "join token revoked");
    Ok(entry)
}

pub(super) async fn grants(state: &ApiState) -> Result<Vec<GrantEntry>, ApiError> {
    Ok(state.admission()?.grants().await?)
}
