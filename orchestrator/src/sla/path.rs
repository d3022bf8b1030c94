//! Where in an SLA document something is: `applications[0].microservices[1].memory`.
//!
//! Every violation names one of these, so a user can find the field without
//! counting braces. The document root is written `$` (as in JSONPath); any
//! other path is written without it.

use std::borrow::Cow;
use std::fmt;

/// One step into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// An object member. Known fields are `'static`; unknown keys come from the user.
    Key(Cow<'static, str>),
    /// An array element, counted from 0.
    Index(usize),
}

/// A path from the document root to a value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SlaPath {
    segments: Vec<Segment>,
}

impl SlaPath {
    /// The document itself (`$`).
    pub fn root() -> SlaPath {
        SlaPath::default()
    }

    /// This path, then the member `key`.
    pub fn key(&self, key: impl Into<Cow<'static, str>>) -> SlaPath {
        self.with(Segment::Key(key.into()))
    }

    /// This path, then element `index`.
    pub fn index(&self, index: usize) -> SlaPath {
        self.with(Segment::Index(index))
    }

    /// The steps, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True for `$`.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    fn with(&self, segment: Segment) -> SlaPath {
        let mut segments = Vec::with_capacity(self.segments.len() + 1);
        segments.extend_from_slice(&self.segments);
        segments.push(segment);
        SlaPath { segments }
    }
}

/// A key that can be written bare after a dot (`memory`, `customerID`);
/// anything else is written `["a key"]` so the path stays unambiguous.
fn is_plain(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl fmt::Display for SlaPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("$");
        }
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_plain(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                // Debug quoting escapes quotes and control characters.
                Segment::Key(key) => write!(f, "[{key:?}]")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_document() {
        assert_eq!(SlaPath::root().to_string(), "$");
        let memory = SlaPath::root().key("applications").index(0).key("microservices").index(1).key("memory");
        assert_eq!(memory.to_string(), "applications[0].microservices[1].memory");
        assert_eq!(SlaPath::root().key("sla_version").to_string(), "sla_version");
        assert_eq!(SlaPath::root().index(2).to_string(), "[2]");
    }

    #[test]
    fn odd_keys_are_quoted() {
        let odd = SlaPath::root().key("applications").index(0).key(String::from("a.b c"));
        assert_eq!(odd.to_string(), r#"applications[0]["a.b c"]"#);
        assert_eq!(SlaPath::root().key(String::new()).to_string(), r#"[""]"#);
    }
}
