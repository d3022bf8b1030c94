//! What is wrong with an SLA, and where: `applications[0].microservices[1].memory: must be > 0`.
//!
//! A [`Violation`] is a path plus a [`Rule`]. Rules come in two kinds
//! ([`ViolationKind`]): the document is *invalid* (not JSON, not Oakestra's
//! SLA v2.0 schema, or a value grove cannot read: the client must fix the
//! file; HTTP 400), or it is well formed but asks for something this grove
//! does not run (*unsupported*; HTTP 422). The HTTP mapping itself lives
//! with the API, in one place.

use std::fmt;

use serde_json::{Number, Value};

use super::path::SlaPath;
use super::port::PortError;

/// One problem at one place.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// Where (`$` for the document as a whole).
    pub path: SlaPath,
    /// What rule the value breaks.
    pub rule: Rule,
}

impl Violation {
    /// A violation of `rule` at `path`.
    pub fn new(path: SlaPath, rule: Rule) -> Violation {
        Violation { path, rule }
    }

    /// Invalid or unsupported.
    pub fn kind(&self) -> ViolationKind {
        self.rule.kind()
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.rule)
    }
}

/// Whether the client must fix the file or grove cannot run what it asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// Not JSON, not SLA v2.0, or a value that cannot be read (HTTP 400).
    Invalid,
    /// Well formed, but not something this grove runs (HTTP 422).
    Unsupported,
}

/// The rule a value breaks. The first group mirrors Oakestra's parser and
/// schema; the rest are grove's own reading of the values.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    // --- Oakestra's parser (`parse_sla_json`) and schema (`sla/schema.py`) ---
    /// The bytes are not JSON (Oakestra: `json.JSONDecodeError`).
    NotJson {
        /// 1-based line of the error.
        line: usize,
        /// Column of the error, as serde_json counts it.
        column: usize,
        /// serde_json's description, without the position.
        reason: String,
    },
    /// `sla_version: "v1.0"` (Oakestra: `Exception("Deprecated")`).
    VersionDeprecated {
        /// The version given.
        found: String,
    },
    /// An `sla_version` Oakestra has no validator for (Oakestra: `KeyError`).
    VersionUnknown {
        /// The version given.
        found: String,
    },
    /// JSON Schema `required`.
    Required,
    /// JSON Schema `type`.
    WrongType {
        /// What the schema asks for.
        expected: JsonType,
        /// What the document has.
        found: Found,
    },
    /// JSON Schema `pattern: ^[a-zA-Z0-9]{1,30}$` on app and service names.
    NamePattern {
        /// The name given.
        found: Found,
    },
    /// JSON Schema `maxLength: 0` on `microserviceID`.
    MustBeEmpty {
        /// The value given.
        found: Found,
    },

    // --- grove's reading of the values (invalid) ---
    /// A field Oakestra leaves optional that grove needs.
    RequiredByGrove {
        /// Why grove needs it.
        why: &'static str,
    },
    /// A field required by the constraint type or the like.
    RequiredFor {
        /// What requires it ("a geo constraint").
        what: &'static str,
    },
    /// Exactly one of two fields must be given.
    EitherOf {
        /// What needs them ("a latency constraint").
        what: &'static str,
        /// The two alternatives ("area or location").
        fields: &'static str,
        /// True when both were given, false when neither was.
        both: bool,
    },
    /// A count or amount that must be positive.
    MustBePositive,
    /// A count or amount that must not be negative.
    MustNotBeNegative,
    /// A count or amount beyond what grove represents.
    TooLarge {
        /// The largest value accepted.
        max: u64,
    },
    /// A fraction such as `rigidness`.
    NotAFraction,
    /// A name grove cannot serve under DNS (`dns::Label` rules, not `svc`).
    NotAName {
        /// The name given.
        found: String,
    },
    /// A second application or service with the same (case-insensitive) name.
    Duplicate {
        /// The first one.
        first: SlaPath,
    },
    /// `code` of a process is not an absolute path.
    NotAbsolutePath {
        /// The value given.
        found: String,
    },
    /// A NUL byte, which no argument, variable or path can carry.
    ContainsNul,
    /// An `environment` entry that is not `NAME=value`.
    NotAnAssignment {
        /// The entry given.
        found: String,
    },
    /// A `port` string grove cannot read.
    BadPort(PortError),
    /// A `location` that is not `"lat,lon"`.
    BadLocation {
        /// The value given.
        found: String,
    },

    // --- what this grove does not run (unsupported) ---
    /// Well formed, but not something grove runs.
    Unsupported(Unsupported),
}

impl Rule {
    /// Invalid or unsupported.
    pub fn kind(&self) -> ViolationKind {
        match self {
            Rule::Unsupported(_) => ViolationKind::Unsupported,
            _ => ViolationKind::Invalid,
        }
    }

    /// The JSON Schema keyword this rule stands for, for the rules that
    /// mirror Oakestra's schema (`required`, `type`, `pattern`, `maxLength`).
    pub fn schema_keyword(&self) -> Option<&'static str> {
        match self {
            Rule::Required => Some("required"),
            Rule::WrongType { .. } => Some("type"),
            Rule::NamePattern { .. } => Some("pattern"),
            Rule::MustBeEmpty { .. } => Some("maxLength"),
            _ => None,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::NotJson { line, column, reason } => write!(f, "not valid JSON at line {line} column {column}: {reason}"),
            Rule::VersionDeprecated { found } => write!(f, "{found:?} is deprecated; use \"v2.0\""),
            Rule::VersionUnknown { found } => write!(f, "{found:?} is not a known SLA version; supported: \"v2.0\""),
            Rule::Required => f.write_str("is required"),
            Rule::WrongType { expected, found } => write!(f, "must be {expected}, got {found}"),
            Rule::NamePattern { found } => write!(f, "must be 1-30 ASCII letters or digits (^[a-zA-Z0-9]{{1,30}}$), got {found}"),
            Rule::MustBeEmpty { found } => write!(f, "must be \"\" or left out (ids are assigned, not chosen), got {found}"),
            Rule::RequiredByGrove { why } => write!(f, "is required by grove: {why}"),
            Rule::RequiredFor { what } => write!(f, "is required for {what}"),
            Rule::EitherOf { what, fields, both: false } => write!(f, "{what} needs {fields}"),
            Rule::EitherOf { what, fields, both: true } => write!(f, "{what} takes {fields}, not both"),
            Rule::MustBePositive => f.write_str("must be > 0"),
            Rule::MustNotBeNegative => f.write_str("must be >= 0"),
            Rule::TooLarge { max } => write!(f, "must be at most {max}"),
            Rule::NotAFraction => f.write_str("must be between 0 and 1"),
            Rule::NotAName { found } => {
                write!(f, "{found:?} is not a grove name: names are DNS labels (letters, digits, inner hyphens) and not \"svc\"")
            }
            Rule::Duplicate { first } => write!(f, "has the same name as {first} (names are case-insensitive)"),
            Rule::NotAbsolutePath { found } => write!(f, "must be the absolute path of the executable, got {found:?}"),
            Rule::ContainsNul => f.write_str("must not contain a NUL byte"),
            Rule::NotAnAssignment { found } => write!(f, "must be NAME=value, got {found:?}"),
            Rule::BadPort(error) => write!(f, "{error}"),
            Rule::BadLocation { found } => {
                write!(f, "must be \"lat,lon\" in decimal degrees (latitude within ±90, longitude within ±180), got {found:?}")
            }
            Rule::Unsupported(what) => write!(f, "{what}"),
        }
    }
}

/// What a well-formed SLA may ask for that this grove does not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// Any `virtualization` but `process`.
    Virtualization {
        /// The virtualization asked for.
        found: String,
    },
    /// A constraint type grove does not place by.
    ConstraintType {
        /// The type asked for.
        found: String,
    },
    /// `vgpus` or `vtpus` above 0.
    Accelerators,
    /// `bandwidth_in`/`bandwidth_out` above 0.
    Bandwidth,
    /// `storage` above 0.
    Storage,
    /// `volumes` (CSI).
    Volumes,
    /// `added_files`.
    AddedFiles,
    /// `state` (stateful migration).
    State,
    /// `privileged: true`.
    Privileged,
    /// `sla_violation_strategy`.
    ViolationStrategy,
    /// `addresses` (ServiceIPs).
    ServiceIp,
    /// `connectivity[].con_constraints` (service-to-service constraints).
    Connectivity,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::Virtualization { found } => write!(f, "{found:?} is not supported by grove; supported: process"),
            Unsupported::ConstraintType { found } => {
                write!(f, "constraint type {found:?} is not supported by grove; supported: geo, latency, direct, clusters")
            }
            Unsupported::Accelerators => f.write_str("GPUs and TPUs are not scheduled by grove; use 0 or leave it out"),
            Unsupported::Bandwidth => f.write_str("bandwidth is not scheduled by grove; use 0 or leave it out"),
            Unsupported::Storage => f.write_str("storage is not scheduled by grove; use 0 or leave it out"),
            Unsupported::Volumes => f.write_str("volumes are not supported by grove; leave it out or []"),
            Unsupported::AddedFiles => f.write_str("added files are not supported by grove; leave it out or []"),
            Unsupported::State => f.write_str("state migration is not supported by grove; leave it out or \"\""),
            Unsupported::Privileged => f.write_str("grove runs workloads unprivileged; leave it out or false"),
            Unsupported::ViolationStrategy => f.write_str("SLA violation strategies are not supported by grove; leave it out"),
            Unsupported::ServiceIp => f.write_str(
                "ServiceIPs are not routed by grove; leave it out and reach the service by name (rr.<service>, closest.<service>)",
            ),
            Unsupported::Connectivity => f.write_str("service-to-service constraints are not enforced by grove; use []"),
        }
    }
}

/// A JSON type as the schema names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonType {
    /// `string`
    String,
    /// `integer` (a number without a fractional part; `100.0` counts)
    Integer,
    /// `number`
    Number,
    /// `boolean`
    Boolean,
    /// `array`
    Array,
    /// `object`
    Object,
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonType::String => "a string",
            JsonType::Integer => "an integer",
            JsonType::Number => "a number",
            JsonType::Boolean => "a boolean",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
        })
    }
}

/// A short rendering of the value a document has where a rule failed:
/// scalars as JSON, long strings cut, containers by kind only.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number as written.
    Number(Number),
    /// A string, cut to [`Found::MAX_CHARS`] characters.
    String(String),
    /// Any array.
    Array,
    /// Any object.
    Object,
}

impl Found {
    /// Longest string kept, in characters.
    pub const MAX_CHARS: usize = 60;

    /// The rendering of `value`.
    pub fn of(value: &Value) -> Found {
        match value {
            Value::Null => Found::Null,
            Value::Bool(b) => Found::Bool(*b),
            Value::Number(n) => Found::Number(n.clone()),
            Value::String(s) => Found::String(s.chars().take(Found::MAX_CHARS).collect()),
            Value::Array(_) => Found::Array,
            Value::Object(_) => Found::Object,
        }
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Null => f.write_str("null"),
            Found::Bool(b) => write!(f, "{b}"),
            Found::Number(n) => write!(f, "{n}"),
            Found::String(s) => write!(f, "{s:?}"),
            Found::Array => f.write_str("an array"),
            Found::Object => f.write_str("an object"),
        }
    }
}

/// All violations found in one document, in document order (never empty
/// when returned as an error).
#[derive(Clone, Debug, PartialEq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// No violations (what a non-SLA error carries).
    pub const NONE: Violations = Violations(Vec::new());

    /// Wraps a list.
    pub fn new(violations: Vec<Violation>) -> Violations {
        Violations(violations)
    }

    /// The violations.
    pub fn as_slice(&self) -> &[Violation] {
        &self.0
    }

    /// Invalid if any one is; unsupported only when all are, since a file
    /// that must be fixed anyway is the client's problem first.
    pub fn kind(&self) -> ViolationKind {
        if self.0.iter().any(|v| v.kind() == ViolationKind::Invalid) {
            ViolationKind::Invalid
        } else {
            ViolationKind::Unsupported
        }
    }
}

impl<'a> IntoIterator for &'a Violations {
    type Item = &'a Violation;
    type IntoIter = std::slice::Iter<'a, Violation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, violation) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}
