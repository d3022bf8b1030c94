//! Join tokens: made by the authority (API or CLI) or listed in a token
//! file, each with an optional expiry and use count, revocable. Only a
//! SHA-256 of each token is kept (in memory and in the authority's state),
//! so the state file does not hand out tokens; a token's `id` (the first
//! hex digits of its hash) names it in listings and revocations.
//!
//! Pure: the caller passes `now` and persists the store.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AdmissionError;
use crate::control::wire::protocol::MAX_TOKEN;

/// Shortest token accepted (generated ones have 32 characters, ~190 bits).
pub const MIN_TOKEN: usize = 16;
/// Tokens held at most (the API refuses more), so the store stays small.
pub const MAX_TOKENS: usize = 4096;

/// Why a presented token was not accepted. The joining node is told only
/// that it was not (one answer for all, so a guesser learns nothing); the
/// authority logs which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("no token presented")]
    Missing,
    #[error("unknown token")]
    Unknown,
    #[error("token {id} expired at {}", super::token_file::format_rfc3339(*at))]
    Expired { id: TokenId, at: u64 },
    #[error("token {id} has no uses left")]
    UsedUp { id: TokenId },
    #[error("token {id} was revoked")]
    Revoked { id: TokenId },
}

/// A token's public name: 8 hex digits of its hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId([u8; 4]);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

impl TryFrom<String> for TokenId {
    type Error = AdmissionError;
    fn try_from(text: String) -> Result<TokenId, AdmissionError> {
        text.parse()
    }
}

impl std::str::FromStr for TokenId {
    type Err = AdmissionError;
    fn from_str(text: &str) -> Result<TokenId, AdmissionError> {
        let bad = || AdmissionError::BadTokenId(text.to_owned());
        if text.len() != 8 {
            return Err(bad());
        }
        let mut id = [0u8; 4];
        for (i, slot) in id.iter_mut().enumerate() {
            *slot = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        }
        Ok(TokenId(id))
    }
}

impl From<TokenId> for String {
    fn from(id: TokenId) -> String {
        id.to_string()
    }
}

/// Where a token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    /// Made through the local API (`netmanager token create`).
    Api,
    /// Listed in the authority's token file.
    File,
}

/// One token as the authority keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub id: TokenId,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// Unix seconds from which it is refused.
    pub expires: Option<u64>,
    /// Joins it may still admit (`None`: unlimited).
    pub uses_left: Option<u32>,
    /// Joins it admitted.
    pub used: u32,
    pub revoked: bool,
    pub created: u64,
    #[serde(default)]
    pub note: String,
    pub source: TokenSource,
}

/// A token's state at some time, for listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Active,
    Expired,
    UsedUp,
    Revoked,
}

impl TokenEntry {
    pub fn state(&self, now_unix: u64) -> TokenState {
        if self.revoked {
            TokenState::Revoked
        } else if self.expires.is_some_and(|at| now_unix >= at) {
            TokenState::Expired
        } else if self.uses_left == Some(0) {
            TokenState::UsedUp
        } else {
            TokenState::Active
        }
    }
}

/// What the authority asks of a new token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSpec {
    /// Seconds it stays valid (`None`: until revoked).
    pub ttl_secs: Option<u64>,
    /// Joins it may admit (`None`: unlimited).
    pub uses: Option<u32>,
    #[serde(default)]
    pub note: String,
}

/// Every token the authority accepts or accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStore {
    tokens: Vec<TokenEntry>,
}

impl TokenStore {
    /// A new random token with `spec`'s limits; the token text is returned
    /// once and never kept.
    pub fn create(&mut self, spec: &TokenSpec, now_unix: u64) -> Result<(String, TokenEntry), AdmissionError> {
        self.make_room(now_unix)?;
        let secret = generate_token()?;
        let expires = match spec.ttl_secs {
            Some(ttl) => Some(now_unix.checked_add(ttl).ok_or(AdmissionError::TtlTooLarge)?),
            None => None,
        };
        let entry = self.insert(&secret, expires, spec.uses, spec.note.clone(), TokenSource::Api, now_unix)?;
        Ok((secret, entry))
    }

    /// Adds a token given as text (token file): known tokens keep their
    /// state (uses, revocation), their expiry follows the file.
    pub fn import(&mut self, secret: &str, expires: Option<u64>, uses: Option<u32>, now_unix: u64) -> Result<(), AdmissionError> {
        check_shape(secret)?;
        let hash = sha256_hex(secret);
        if let Some(known) = self.tokens.iter_mut().find(|t| t.sha256 == hash) {
            known.expires = expires;
            return Ok(());
        }
        self.make_room(now_unix)?;
        self.insert(secret, expires, uses, String::new(), TokenSource::File, now_unix).map(drop)
    }

    /// File tokens no longer in the file are revoked (removing a line is
    /// how a token-file admin revokes).
    pub fn revoke_file_tokens_except(&mut self, kept: &[String]) {
        let kept: Vec<String> = kept.iter().map(|s| sha256_hex(s)).collect();
        for token in self.tokens.iter_mut().filter(|t| t.source == TokenSource::File) {
            if !kept.contains(&token.sha256) {
                token.revoked = true;
            }
        }
    }

    /// The token `presented` names, if it may admit a node at `now_unix`.
    /// Every entry is compared (hashes of equal length, in constant time),
    /// so timing tells nothing; a token longer than [`MAX_TOKEN`] is refused
    /// before hashing.
    pub fn check(&self, presented: &str, now_unix: u64) -> Result<TokenId, TokenProblem> {
        if presented.is_empty() {
            return Err(TokenProblem::Missing);
        }
        if presented.len() > MAX_TOKEN {
            return Err(TokenProblem::Unknown);
        }
        let hash = sha256_hex(presented);
        let mut found = None;
        for token in &self.tokens {
            if ct_eq(token.sha256.as_bytes(), hash.as_bytes()) && found.is_none() {
                found = Some(token);
            }
        }
        let token = found.ok_or(TokenProblem::Unknown)?;
        match token.state(now_unix) {
            TokenState::Active => Ok(token.id),
            TokenState::Revoked => Err(TokenProblem::Revoked { id: token.id }),
            TokenState::Expired => Err(TokenProblem::Expired { id: token.id, at: token.expires.unwrap_or(0) }),
            TokenState::UsedUp => Err(TokenProblem::UsedUp { id: token.id }),
        }
    }

    /// Counts one join against `id`.
    pub fn consume(&mut self, id: TokenId) {
        if let Some(token) = self.tokens.iter_mut().find(|t| t.id == id) {
            token.used = token.used.saturating_add(1);
            if let Some(left) = token.uses_left.as_mut() {
                *left = left.saturating_sub(1);
            }
        }
    }

    /// Revokes the token with this id.
    pub fn revoke(&mut self, id: TokenId) -> Result<TokenEntry, AdmissionError> {
        let token = self.tokens.iter_mut().find(|t| t.id == id).ok_or(AdmissionError::NoSuchToken(id))?;
        token.revoked = true;
        Ok(token.clone())
    }

    pub fn list(&self) -> &[TokenEntry] {
        &self.tokens
    }

    fn insert(
        &mut self,
        secret: &str,
        expires: Option<u64>,
        uses: Option<u32>,
        note: String,
        source: TokenSource,
        now_unix: u64,
    ) -> Result<TokenEntry, AdmissionError> {
        let sha256 = sha256_hex(secret);
        let digest = Sha256::digest(secret.as_bytes());
        let id = TokenId([digest[0], digest[1], digest[2], digest[3]]);
        if self.tokens.iter().any(|t| t.id == id) {
            return Err(AdmissionError::TokenCollision);
        }
        let entry = TokenEntry { id, sha256, expires, uses_left: uses, used: 0, revoked: false, created: now_unix, note, source };
        self.tokens.push(entry.clone());
        Ok(entry)
    }

    /// Drops tokens that can never admit anyone again once the store is
    /// full; refuses if every one of them is still usable.
    fn make_room(&mut self, now_unix: u64) -> Result<(), AdmissionError> {
        if self.tokens.len() < MAX_TOKENS {
            return Ok(());
        }
        self.tokens.retain(|t| t.state(now_unix) == TokenState::Active);
        if self.tokens.len() >= MAX_TOKENS {
            return Err(AdmissionError::TooManyTokens(MAX_TOKENS));
        }
        Ok(())
    }
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    std::hint::black_box(diff) == 0
}

pub(super) fn check_shape(token: &str) -> Result<(), AdmissionError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if token.len() < MIN_TOKEN || token.len() > MAX_TOKEN || !token.chars().all(ok_char) {
        return Err(AdmissionError::TokenShape);
    }
    Ok(())
}

/// A fresh join token: 32 random alphanumerics (~190 bits). No `-`/`_`, so it
/// never looks like a command-line flag.
pub fn generate_token() -> Result<String, AdmissionError> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).map_err(AdmissionError::Random)?;
        // Rejection sampling: 248 = 4 * 62 keeps every character equally likely.
        for b in buf.iter().filter(|&&b| b < 248).take(32 - out.len()) {
            out.push(char::from(ALPHABET[usize::from(b % 62)]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOK_A: &str = "aaaaaaaaaaaaaaaa-1";

    #[test]
    fn tokens_expire_run_out_and_are_revoked() {
        let mut store = TokenStore::default();
        let (secret, entry) = store.create(&TokenSpec { ttl_secs: Some(100), uses: Some(2), note: "x".into() }, 1000).expect("create");
        assert_eq!(entry.expires, Some(1100));
        assert!(!store.list()[0].sha256.contains(&secret), "only the hash is kept");
        let id = store.check(&secret, 1050).expect("valid");
        store.consume(id);
        store.consume(id);
        assert_eq!(store.check(&secret, 1050), Err(TokenProblem::UsedUp { id }));
        let (other, entry) = store.create(&TokenSpec::default(), 1000).expect("create");
        assert_eq!(store.check(&other, u64::MAX - 1), Ok(entry.id), "no ttl: no expiry");
        store.revoke(entry.id).expect("revoke");
        assert_eq!(store.check(&other, 1000), Err(TokenProblem::Revoked { id: entry.id }));
        let (third, entry) = store.create(&TokenSpec { ttl_secs: Some(10), ..TokenSpec::default() }, 1000).expect("create");
        assert_eq!(store.check(&third, 1010), Err(TokenProblem::Expired { id: entry.id, at: 1010 }));
        assert_eq!(store.check("", 0), Err(TokenProblem::Missing));
        assert_eq!(store.check(&"x".repeat(MAX_TOKEN + 1), 0), Err(TokenProblem::Unknown));
        assert!(store.create(&TokenSpec { ttl_secs: Some(u64::MAX), ..TokenSpec::default() }, 1).is_err());
        assert_eq!(entry.id.to_string().parse::<TokenId>().expect("id"), entry.id);
    }

    #[test]
    fn file_tokens_follow_the_file() {
        let mut store = TokenStore::default();
        store.import(TOK_A, None, Some(1), 0).expect("import");
        let id = store.check(TOK_A, 0).expect("valid");
        store.consume(id);
        store.import(TOK_A, Some(50), Some(1), 0).expect("re-import keeps the count");
        assert_eq!(store.check(TOK_A, 0), Err(TokenProblem::UsedUp { id }));
        store.revoke_file_tokens_except(&[]);
        assert_eq!(store.check(TOK_A, 0), Err(TokenProblem::Revoked { id }));
    }

    #[test]
    fn checking_a_huge_token_costs_nothing_per_entry() {
        // F19: comparing a 16 MiB token against every entry was O(len × n).
        let mut store = TokenStore::default();
        for _ in 0..100 {
            store.create(&TokenSpec::default(), 0).expect("create");
        }
        let huge = "a".repeat(16 << 20);
        let started = std::time::Instant::now();
        assert_eq!(store.check(&huge, 0), Err(TokenProblem::Unknown));
        assert!(started.elapsed() < std::time::Duration::from_millis(5), "{:?}", started.elapsed());
    }

    #[test]
    fn generated_tokens_have_the_right_shape() {
        let (a, b) = (generate_token().expect("rng"), generate_token().expect("rng"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(check_shape(&a).is_ok());
    }
}
