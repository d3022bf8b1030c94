//! The authority's token file: one token per line, `<token> [<expires>]
//! [uses=<n>]`, expiry in unix seconds or `YYYY-MM-DDTHH:MM:SSZ`, `#`
//! starting a comment. Tokens listed there are imported into the
//! authority's [`super::tokens::TokenStore`]; a line removed is a token
//! revoked.

use super::tokens::{check_shape, MIN_TOKEN};
use super::AdmissionError;
use crate::control::wire::protocol::MAX_TOKEN;

/// One line of a token file: `<token> [<expires>] [uses=<n>]`, expiry in
/// unix seconds or `YYYY-MM-DDTHH:MM:SSZ`; `#` starts a comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenLine {
    pub token: String,
    pub expires: Option<u64>,
    pub uses: Option<u32>,
}

/// Parses a token file; errors name the line.
pub fn parse_token_file(text: &str, origin: &str) -> Result<Vec<TokenLine>, AdmissionError> {
    let mut lines: Vec<TokenLine> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let err = |reason: String| AdmissionError::TokenSyntax { origin: origin.to_owned(), line: i + 1, reason };
        let mut fields = raw.split('#').next().unwrap_or_default().split_whitespace();
        let Some(token) = fields.next() else { continue };
        if check_shape(token).is_err() {
            return Err(err(format!(
                "a token is {MIN_TOKEN} to {MAX_TOKEN} of A-Z a-z 0-9 . _ - (make one: `netmanager token create`)"
            )));
        }
        let mut line = TokenLine { token: token.to_owned(), expires: None, uses: None };
        for field in fields {
            if let Some(n) = field.strip_prefix("uses=") {
                line.uses = Some(n.parse().map_err(|_| err(format!("uses={n:?} is not a count")))?);
            } else if line.expires.is_none() && field.bytes().all(|b| b.is_ascii_digit()) {
                line.expires = Some(field.parse().map_err(|_| err(format!("expiry {field} is out of range")))?);
            } else if line.expires.is_none() {
                line.expires = Some(parse_rfc3339(field).ok_or_else(|| {
                    err(format!("expiry {field:?} is neither unix seconds nor like 2026-12-01T00:00:00Z"))
                })?);
            } else {
                return Err(err(format!("unexpected {field:?}; the format is `<token> [<expires>] [uses=<n>]`")));
            }
        }
        if lines.iter().any(|l| l.token == line.token) {
            return Err(err("this token is listed twice".into()));
        }
        lines.push(line);
    }
    Ok(lines)
}

/// A lifetime like `24h`, `7d`, `30m`, `90s` (a bare number is hours) in
/// seconds.
pub fn parse_ttl(ttl: &str) -> Result<u64, String> {
    let (number, unit) = ttl.split_at(ttl.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: u64 = number.parse().map_err(|_| format!("{ttl:?}: expected e.g. 24h, 7d, 30m"))?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86400,
        other => return Err(format!("{ttl:?}: unknown unit {other:?} (use s, m, h or d)")),
    };
    n.checked_mul(unit_secs).filter(|s| *s <= 100 * 365 * 86400).ok_or_else(|| format!("{ttl:?} is too large; use e.g. 24h or 30d"))
}

/// Appends `<token> [<expires>] [uses=<n>]` to a token file, creating it
/// 0600 (an existing file must already be private).
pub fn append_token(path: &std::path::Path, line: &TokenLine) -> Result<(), AdmissionError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| AdmissionError::StateIo { path: path.to_owned(), source };
    if path.exists() {
        crate::files::check_private(path)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io)?;
    let mut text = line.token.clone();
    if let Some(at) = line.expires {
        text.push_str(&format!(" {at}"));
    }
    if let Some(uses) = line.uses {
        text.push_str(&format!(" uses={uses}"));
    }
    text.push('\n');
    file.write_all(text.as_bytes()).map_err(io)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC only, no fractions) to unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
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
pub fn format_rfc3339(unix: u64) -> String {
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

    #[test]
    fn token_file_errors_name_the_line() {
        let cases = [
            ("# c\n\nshort\n", 3),
            (&format!("{TOK_A}\n{TOK_A}\n"), 2),
            (&format!("{TOK_A} 2026-13-01T00:00:00Z\n"), 1),
            (&format!("\n{TOK_A} 5 6\n"), 2),
            (&format!("{TOK_A} uses=x\n"), 1),
            ("0123456789abcdef!\n", 1),
        ];
        for (text, line) in cases {
            match parse_token_file(text, "t") {
                Err(AdmissionError::TokenSyntax { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let ok = parse_token_file(&format!("# tokens\n\n  {TOK_A} 1000 uses=2 # laptop\n"), "t").expect("ok");
        assert_eq!(ok, vec![TokenLine { token: TOK_A.into(), expires: Some(1000), uses: Some(2) }]);
    }

    #[test]
    fn ttls_and_appended_lines() {
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("24h"), Ok(86_400));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert_eq!(parse_ttl("2"), Ok(7200));
        assert!(parse_ttl("5y").is_err());
        assert!(parse_ttl("99999999999999999d").is_err(), "overflow is refused");
        let dir = std::env::temp_dir().join(format!("grove-token-file-{}", std::process::id()));
        let path = dir.join("tokens");
        crate::files::create_private_dir(&dir).expect("dir");
        let line = TokenLine { token: TOK_A.into(), expires: Some(5), uses: Some(1) };
        append_token(&path, &line).expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(parse_token_file(&text, "t").expect("parse"), vec![line]);
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn rfc3339_edges() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T23:59:59Z"), Some(1_709_251_199));
        assert_eq!(parse_rfc3339("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-12-01T00:00:00+01:00"), None);
        assert_eq!(format_rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
    }

}
