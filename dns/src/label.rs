//! One DNS label of a grove name, validated and lowercased, held inline.
//!
//! Names come from the network, so parsing must neither panic nor allocate:
//! a [`Label`] keeps its (at most 63) bytes in a fixed array, which makes a
//! parsed [`crate::QueryName`] a plain value on the stack.
//!
//! grove's own labels (service, app, namespace, port names) use the
//! letters-digits-hyphen rule of RFC 1123 §2.1, lowercased: `a-z`, `0-9` and
//! `-`, not starting or ending with `-`. DNS itself allows any octet in a
//! label (RFC 2181 §11); such labels are valid names, just not grove's, so
//! rejecting them is an NXDOMAIN matter, not a FORMERR one.

use std::fmt;

/// Longest label DNS allows (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest name in presentation form without the trailing dot (RFC 1035 §2.3.4:
/// 255 octets on the wire, which is 253 characters of text).
pub const MAX_NAME_LEN: usize = 253;

/// A validated, lowercase grove label (`[a-z0-9-]{1,63}`, no leading or
/// trailing hyphen).
#[derive(Clone, Copy)]
pub struct Label {
    len: u8,
    bytes: [u8; MAX_LABEL_LEN],
}

impl Label {
    /// Checks and lowercases one label given as raw octets (ASCII case folding
    /// only, as RFC 4343 prescribes for DNS). `None` if it is not a grove label.
    pub fn from_bytes(raw: &[u8]) -> Option<Label> {
        if raw.is_empty() || raw.len() > MAX_LABEL_LEN {
            return None;
        }
        if raw[0] == b'-' || raw[raw.len() - 1] == b'-' {
            return None;
        }
        let mut bytes = [0u8; MAX_LABEL_LEN];
        for (slot, &b) in bytes.iter_mut().zip(raw) {
            let lower = b.to_ascii_lowercase();
            if !(lower.is_ascii_lowercase() || lower.is_ascii_digit() || lower == b'-') {
                return None;
            }
            *slot = lower;
        }
        Some(Label {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// Like [`Label::from_bytes`] for text (config values, instance fields).
    pub fn parse(text: &str) -> Option<Label> {
        Label::from_bytes(text.as_bytes())
    }

    /// The label as text; always ASCII.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters, digits and '-' are ever stored.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The label's octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// True when `raw` equals the lowercase label `lower` under DNS (ASCII)
/// case folding.
pub fn eq_ignore_case(raw: &[u8], lower: &str) -> bool {
    raw.eq_ignore_ascii_case(lower.as_bytes())
}

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for Label {}

impl PartialEq<str> for Label {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Label {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Label {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for Label {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl serde::Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Deserializing validates: a label that is not a grove label is an error,
/// so nothing decoded from JSON or the wire can carry one.
impl<'de> serde::Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Label;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a DNS label: 1-63 letters, digits or inner hyphens")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Label, E> {
                Label::parse(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_accepts_ldh() {
        let l = Label::parse("Ms2-Edge").expect("valid");
        assert_eq!(l.as_str(), "ms2-edge");
        assert_eq!(l, "ms2-edge");
        assert!(Label::parse("0").is_some());
        assert!(Label::parse(&"a".repeat(63)).is_some());
    }

    #[test]
    fn rejects_what_is_not_a_grove_label() {
        for bad in ["", "-a", "a-", "a_b", "a.b", "a b", "ms2\u{e9}", "\u{1F332}", "a\0"] {
            assert!(Label::parse(bad).is_none(), "{bad:?}");
        }
        assert!(Label::parse(&"a".repeat(64)).is_none());
        assert!(Label::from_bytes(&[0xff, 0xfe]).is_none());
        // Non-ASCII must not be case-folded into ASCII.
        assert!(Label::from_bytes("K".as_bytes()).is_some());
        assert!(Label::from_bytes("\u{212A}".as_bytes()).is_none()); // KELVIN SIGN
    }

    #[test]
    fn case_insensitive_compare() {
        assert!(eq_ignore_case(b"GROVE", "grove"));
        assert!(!eq_ignore_case(b"grovE1", "grove"));
    }
}
