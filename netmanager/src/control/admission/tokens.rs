//! Join tokens: the authority's token file (one per line, optional expiry),
//! checking a presented token in constant time, making new ones, and the
//! refusal a joining node is sent back.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::admission::AdmissionError;
use super::identity::read_private;

/// Why a join was refused; meant to be sent back to the joining node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error(
        "join token unknown to the authority; ask the cluster admin for a token \
         (`netmanager token`)"
    )]
    UnknownToken,
    #[error(
        "join token expired at {}; ask the cluster admin for a fresh token (`netmanager token`)",
        format_rfc3339(*at)
    )]
    Expired { at: u64 },
}

/// The join tokens the authority accepts, each with an optional expiry
/// (unix seconds; the token is refused from that second on).
#[derive(Clone, Default)]
pub struct TokenList {
    tokens: Vec<(String, Option<u64>)>,
}

impl fmt::Debug for TokenList {
    /// Never prints the tokens: they are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenList({} tokens)", self.tokens.len())
    }
}

impl TokenList {
    /// One token per line, `<token> [<expires>]`, expiry in unix seconds or
    /// `YYYY-MM-DDTHH:MM:SSZ`; `#` starts a comment.
    pub fn parse(text: &str) -> Result<TokenList, AdmissionError> {
        Self::parse_from(text, "join token list")
    }

    /// Reads a token file, which must be private (0600) like a key.
    pub fn load(path: &Path) -> Result<TokenList, AdmissionError> {
        Self::parse_from(
            &read_private(path)?,
            &format!("join token file {}", path.display()),
        )
    }

    fn parse_from(text: &str, origin: &str) -> Result<TokenList, AdmissionError> {
        let mut tokens: Vec<(String, Option<u64>)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |reason: String| AdmissionError::TokenSyntax {
                origin: origin.to_owned(),
                line: i + 1,
                reason,
            };
            let mut fields = raw.split('#').next().unwrap_or_default().split_whitespace();
            let Some(token) = fields.next() else { continue };
            let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if token.len() < 16 || !token.chars().all(ok_char) {
                let why =
                    "a token is 16 or more of A-Z a-z 0-9 . _ - (make one: `netmanager token`)";
                return Err(err(why.into()));
            }
            let expires = match fields.next() {
                None => None,
                Some(e) if e.bytes().all(|b| b.is_ascii_digit()) => Some(
                    e.parse()
                        .map_err(|_| err(format!("expiry {e} is out of range")))?,
                ),
                Some(e) => Some(parse_rfc3339(e).ok_or_else(|| {
                    err(format!(
                        "expiry {e:?} is neither unix seconds nor like 2026-12-01T00:00:00Z"
                    ))
                })?),
            };
            if let Some(extra) = fields.next() {
                return Err(err(format!(
                    "unexpected {extra:?}; the format is `<token> [<expires>]`"
                )));
            }
            if tokens.iter().any(|(t, _)| t == token) {
                return Err(err("this token is listed twice".into()));
            }
            tokens.push((token.to_owned(), expires));
        }
        Ok(TokenList { tokens })
    }

    /// Accepts `presented` if it matches a listed token not expired at
    /// `now_unix` (seconds). Every token is compared in constant time, so
    /// response timing does not reveal how much of a guess was right.
    pub fn check(&self, presented: &str, now_unix: u64) -> Result<(), Refusal> {
        let mut found = None;
        for (token, expires) in &self.tokens {
            if ct_eq(token.as_bytes(), presented.as_bytes()) && found.is_none() {
                found = Some(*expires);
            }
        }
        match found {
            None => Err(Refusal::UnknownToken),
            Some(Some(at)) if now_unix >= at => Err(Refusal::Expired { at }),
            Some(_) => Ok(()),
        }
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    std::hint::black_box(diff) == 0
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

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC only, no fractions) to unix seconds.
fn parse_rfc3339(s: &str) -> Option<u64> {
    let shape_ok = s.len() == 20
        && s.bytes().enumerate().all(|(i, c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let dim = *month_days.get(usize::try_from(mo - 1).ok()?)?;
    if y < 1970 || d == 0 || d > dim || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    u64::try_from(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se).ok()
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let (era, yoe) = (y.div_euclid(400), y.rem_euclid(400));
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Unix seconds to `YYYY-MM-DDTHH:MM:SSZ`, so refusals speak the admin's format.
fn format_rfc3339(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let (d, m) = (
        (doy - (153 * mp + 2) / 5 + 1),
        if mp < 10 { mp + 3 } else { mp - 9 },
    );
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOK_A: &str = "aaaaaaaaaaaaaaaa-1";
    const TOK_B: &str = "bbbbbbbbbbbbbbbb.2";
    #[test]
    fn token_syntax_errors_name_the_line() {
        let cases = [
            ("# c\n\nshort\n", 3),
            (&format!("{TOK_A}\n{TOK_A}\n"), 2),
            (&format!("{TOK_A} 2026-13-01T00:00:00Z\n"), 1),
            (&format!("\n{TOK_A} 5 extra\n"), 2),
            ("0123456789abcdef!\n", 1),
        ];
        for (text, line) in cases {
            match TokenList::parse(text) {
                Err(AdmissionError::TokenSyntax { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let ok = TokenList::parse(&format!("# tokens\n\n  {TOK_A}  # admin laptop\n")).expect("ok");
        assert_eq!(ok.check(TOK_A, 0), Ok(()));
        assert_eq!(format!("{ok:?}"), "TokenList(1 tokens)");
    }

    #[test]
    fn tokens_expire_and_unknown_ones_are_refused() {
        let list =
            TokenList::parse(&format!("{TOK_A} 1000\n{TOK_B} 2026-12-01T00:00:00Z\n")).expect("ok");
        assert_eq!(list.check(TOK_A, 999), Ok(()));
        assert_eq!(list.check(TOK_A, 1000), Err(Refusal::Expired { at: 1000 }));
        assert_eq!(list.check(TOK_B, 1_796_083_199), Ok(()));
        let err = list.check(TOK_B, 1_796_083_200).expect_err("expired");
        assert_eq!(err, Refusal::Expired { at: 1_796_083_200 });
        assert!(err.to_string().contains("2026-12-01T00:00:00Z"), "{err}");
        assert_eq!(
            list.check("aaaaaaaaaaaaaaaa-", 0),
            Err(Refusal::UnknownToken)
        );
        assert!(Refusal::UnknownToken
            .to_string()
            .contains("netmanager token"));
    }

    #[test]
    fn rfc3339_edges() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T23:59:59Z"), Some(1_709_251_199));
        assert_eq!(parse_rfc3339("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-12-01T00:00:00+01:00"), None);
        assert_eq!(format_rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn generated_tokens_are_accepted_by_the_parser() {
        let (a, b) = (
            generate_token().expect("rng"),
            generate_token().expect("rng"),
        );
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        TokenList::parse(&a).expect("valid");
    }

}
