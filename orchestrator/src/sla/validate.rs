//! The schema-level check: bytes in, an Oakestra SLA v2.0 document (or every
//! violation) out. Pure: no I/O, no clock.
//!
//! It follows Oakestra's `parse_sla_json` (oakestra/oakestra
//! `root_orchestrator/system-manager-python/sla/versioned_sla_parser.py`)
//! step by step, but answers where Oakestra raises:
//!
//! 1. the bytes must be JSON (Oakestra: `json.JSONDecodeError`);
//! 2. the document must be an object (Oakestra: an uncaught `TypeError`);
//! 3. `sla_version` must be there (Oakestra: `KeyError` before any schema
//!    check) and be `"v2.0"` (`"v1.0"`: `Exception("Deprecated")`; anything
//!    else: `KeyError`);
//! 4. the document must pass the schema ([`super::schema`]). Oakestra reports
//!    the single error jsonschema's `best_match` picks; grove reports all.
//!
//! Unknown keys are ignored, as the schema ignores them, and listed in
//! [`Checked::ignored`] so a typo (`vcpu` for `vcpus`) does not go unnoticed.

use serde_json::{Number, Value};

use super::path::{Segment, SlaPath};
use super::schema::{ObjectShape, Shape, SLA};
use super::v2::Sla;
use super::violation::{Found, JsonType, Rule, Violation, Violations};

/// The SLA versions Oakestra dispatches on (`sla/sla_versions.py`).
const SUPPORTED_VERSION: &str = "v2.0";
const DEPRECATED_VERSION: &str = "v1.0";

/// What the check says about one document.
#[derive(Debug)]
pub struct Checked {
    /// The document, or everything wrong with it.
    pub sla: Result<Sla, Violations>,
    /// Keys the schema does not know, ignored (reported even when the document is rejected).
    pub ignored: Vec<IgnoredKey>,
}

/// A key the schema does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredKey {
    /// Where.
    pub path: SlaPath,
    /// A known key of the same object it is probably a typo of (`vcpu` → `vcpus`).
    pub did_you_mean: Option<&'static str>,
}

/// The outcome of checking a value against the schema alone.
#[derive(Debug, Default)]
pub struct SchemaReport {
    /// Every schema violation, in schema order within each object.
    pub violations: Vec<Violation>,
    /// Every unknown key.
    pub ignored: Vec<IgnoredKey>,
}

/// Checks SLA bytes the way Oakestra's parser would, collecting every violation.
pub fn check(bytes: &[u8]) -> Checked {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(error) => return rejected(vec![Violation::new(SlaPath::root(), not_json(bytes, &error))]),
    };
    if !value.is_object() {
        let found = Found::of(&value);
        return rejected(vec![Violation::new(SlaPath::root(), Rule::WrongType { expected: JsonType::Object, found })]);
    }
    if let Some(violation) = check_version(&value) {
        return rejected(vec![violation]);
    }
    let report = check_schema(&value);
    if !report.violations.is_empty() {
        return Checked { sla: Err(Violations::new(report.violations)), ignored: report.ignored };
    }
    let sla = serde_json::from_value(value).map_err(|error| {
        // Unreachable if the schema table and the v2 structs agree (the
        // fixture test holds them together); reported, not panicked on.
        let reason = format!("passes the schema but not grove's model of it: {error}");
        Violations::new(vec![Violation::new(SlaPath::root(), Rule::NotJson { line: 0, column: 0, reason })])
    });
    Checked { sla, ignored: report.ignored }
}

/// Checks a JSON value against Oakestra's SLA v2.0 schema only (step 4,
/// without the version dispatch before it).
pub fn check_schema(value: &Value) -> SchemaReport {
    check_shape(value, &SLA)
}

/// Checks a JSON value against one part of the schema, e.g. a single
/// microservice (`Shape::Object(&schema::MICROSERVICE)`) as the dashboard
/// uploads them; paths are relative to `value`.
pub fn check_shape(value: &Value, shape: &Shape) -> SchemaReport {
    let mut report = SchemaReport::default();
    walk(value, shape, &SlaPath::root(), &mut report);
    report
}

fn rejected(violations: Vec<Violation>) -> Checked {
    Checked { sla: Err(Violations::new(violations)), ignored: Vec::new() }
}

fn not_json(bytes: &[u8], error: &serde_json::Error) -> Rule {
    let (line, column) = (error.line(), error.column());
    let reason = if bytes.iter().all(u8::is_ascii_whitespace) {
        "the file is empty".to_owned()
    } else {
        // serde_json appends the position; it is in the rule already.
        let text = error.to_string();
        let suffix = format!(" at line {line} column {column}");
        text.strip_suffix(&suffix).map_or(text.clone(), str::to_owned)
    };
    Rule::NotJson { line, column, reason }
}

/// Step 3: `sla_version`, looked at before the schema, as Oakestra does.
fn check_version(document: &Value) -> Option<Violation> {
    let path = SlaPath::root().key("sla_version");
    let rule = match document.get("sla_version") {
        None => Rule::Required,
        Some(Value::String(version)) if version == SUPPORTED_VERSION => return None,
        Some(Value::String(version)) if version == DEPRECATED_VERSION => Rule::VersionDeprecated { found: version.clone() },
        Some(Value::String(version)) => Rule::VersionUnknown { found: version.clone() },
        Some(other) => Rule::WrongType { expected: JsonType::String, found: Found::of(other) },
    };
    Some(Violation::new(path, rule))
}

fn walk(value: &Value, shape: &Shape, path: &SlaPath, report: &mut SchemaReport) {
    let wrong = |expected| Violation::new(path.clone(), Rule::WrongType { expected, found: Found::of(value) });
    match (shape, value) {
        (Shape::String, Value::String(_)) => {}
        (Shape::Name, Value::String(name)) => {
            if !is_oakestra_name(name) {
                report.violations.push(Violation::new(path.clone(), Rule::NamePattern { found: Found::of(value) }));
            }
        }
        (Shape::EmptyString, Value::String(id)) => {
            if !id.is_empty() {
                report.violations.push(Violation::new(path.clone(), Rule::MustBeEmpty { found: Found::of(value) }));
            }
        }
        (Shape::String | Shape::Name | Shape::EmptyString, _) => report.violations.push(wrong(JsonType::String)),
        (Shape::Integer, Value::Number(n)) if is_integer(n) => {}
        (Shape::Integer, _) => report.violations.push(wrong(JsonType::Integer)),
        (Shape::Number, Value::Number(_)) => {}
        (Shape::Number, _) => report.violations.push(wrong(JsonType::Number)),
        (Shape::Boolean, Value::Bool(_)) => {}
        (Shape::Boolean, _) => report.violations.push(wrong(JsonType::Boolean)),
        (Shape::AnyObject, Value::Object(_)) => {}
        (Shape::AnyObject, _) => report.violations.push(wrong(JsonType::Object)),
        (Shape::Array(items), Value::Array(elements)) => {
            for (i, element) in elements.iter().enumerate() {
                walk(element, items, &path.index(i), report);
            }
        }
        (Shape::Array(_), _) => report.violations.push(wrong(JsonType::Array)),
        (Shape::Object(object), Value::Object(_)) => walk_object(value, object, path, report),
        (Shape::Object(_), _) => report.violations.push(wrong(JsonType::Object)),
    }
}

fn walk_object(value: &Value, object: &ObjectShape, path: &SlaPath, report: &mut SchemaReport) {
    for (name, shape) in object.properties {
        match value.get(*name) {
            Some(member) => walk(member, shape, &path.key(*name), report),
            None if object.requires(name) => report.violations.push(Violation::new(path.key(*name), Rule::Required)),
            None => {}
        }
    }
    let Some(members) = value.as_object() else { return };
    for key in members.keys() {
        // grove's own additions are read by `spec`, not ignored.
        let grove_extension = std::ptr::eq(object, &super::schema::MICROSERVICE) && key == "instances";
        if !grove_extension && !object.properties.iter().any(|(name, _)| name == key) {
            let did_you_mean = object.properties.iter().map(|(name, _)| *name).find(|name| is_typo_of(key, name));
            report.ignored.push(IgnoredKey { path: path.key(key.clone()), did_you_mean });
        }
    }
}

/// `^[a-zA-Z0-9]{1,30}$`, read strictly: unlike Python's `re.search`, `$`
/// does not let a trailing newline through (`"abc\n"` is no name).
fn is_oakestra_name(name: &str) -> bool {
    (1..=30).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// JSON Schema `integer`: a number whose fractional part is zero.
fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// True when `key` is within two edits of `known` (and not trivially short),
/// e.g. `vcpu` → `vcpus`, `bandwith_out` → `bandwidth_out`.
fn is_typo_of(key: &str, known: &str) -> bool {
    key.len() >= 3 && edit_distance(&key.to_ascii_lowercase(), &known.to_ascii_lowercase()) <= 2
}

/// Levenshtein distance over bytes (keys are ASCII in practice).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

impl IgnoredKey {
    /// The unknown key itself.
    pub fn key(&self) -> &str {
        match self.path.segments().last() {
            Some(Segment::Key(key)) => key,
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The smallest document Oakestra accepts with one microservice.
    fn minimal() -> Value {
        json!({
            "sla_version": "v2.0",
            "customerID": "Admin",
            "applications": [{
                "application_name": "app",
                "application_namespace": "test",
                "microservices": [{
                    "microservice_name": "web",
                    "microservice_namespace": "test",
                    "virtualization": "process",
                    "code": "/usr/bin/web"
                }]
            }]
        })
    }

    fn errors_of(value: &Value) -> Vec<String> {
        match check(value.to_string().as_bytes()).sla {
            Ok(_) => Vec::new(),
            Err(violations) => violations.as_slice().iter().map(ToString::to_string).collect(),
        }
    }

    fn with(change: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut document = minimal();
        change(&mut document);
        errors_of(&document)
    }

    const MS: &str = "applications[0].microservices[0]";

    #[test]
    fn minimal_document_passes() {
        let checked = check(minimal().to_string().as_bytes());
        let sla = checked.sla.expect("valid");
        assert_eq!(sla.applications[0].microservices[0].code, "/usr/bin/web");
        assert!(checked.ignored.is_empty());
    }

    #[test]
    fn not_json_names_the_position() {
        let errors = errors_of_bytes(b"{\n  \"sla_version\": \"v2.0\",\n}");
        assert_eq!(errors, ["$: not valid JSON at line 3 column 1: trailing comma"]);
        assert_eq!(errors_of_bytes(b""), ["$: not valid JSON at line 1 column 0: the file is empty"]);
        assert_eq!(errors_of_bytes(b"\"volumes\": []"), ["$: not valid JSON at line 1 column 10: trailing characters"]);
    }

    fn errors_of_bytes(bytes: &[u8]) -> Vec<String> {
        match check(bytes).sla {
            Ok(_) => Vec::new(),
            Err(violations) => violations.as_slice().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_document_must_be_an_object() {
        assert_eq!(errors_of_bytes(b"[]"), ["$: must be an object, got an array"]);
        assert_eq!(errors_of_bytes(b"null"), ["$: must be an object, got null"]);
    }

    #[test]
    fn sla_version_comes_first_and_alone() {
        // Oakestra raises KeyError before looking at anything else.
        assert_eq!(errors_of(&json!({})), ["sla_version: is required"]);
        assert_eq!(with(|d| d["sla_version"] = json!("v1.0")), [r#"sla_version: "v1.0" is deprecated; use "v2.0""#]);
        assert_eq!(with(|d| d["sla_version"] = json!("v3.0")), [r#"sla_version: "v3.0" is not a known SLA version; supported: "v2.0""#]);
        assert_eq!(with(|d| d["sla_version"] = json!(2)), ["sla_version: must be a string, got 2"]);
    }

    #[test]
    fn every_schema_error_is_reported_with_its_path() {
        let errors = with(|d| {
            let app = &mut d["applications"][0];
            app.as_object_mut().expect("object").remove("application_namespace");
            app["application_name"] = json!("Example Application");
            let ms = &mut app["microservices"][0];
            ms.as_object_mut().expect("object").remove("code");
            ms["microserviceID"] = json!("4");
            ms["port"] = json!(80);
            ms["memory"] = json!(1.5);
            ms["one_shot"] = json!("yes");
        });
        assert_eq!(
            errors,
            [
                r#"applications[0].application_name: must be 1-30 ASCII letters or digits (^[a-zA-Z0-9]{1,30}$), got "Example Application""#,
                "applications[0].application_namespace: is required",
                &format!(r#"{MS}.microserviceID: must be "" or left out (ids are assigned, not chosen), got "4""#),
                &format!("{MS}.memory: must be an integer, got 1.5"),
                &format!("{MS}.code: is required"),
                &format!("{MS}.port: must be a string, got 80"),
                &format!("{MS}.one_shot: must be a boolean, got \"yes\""),
            ]
        );
    }

    #[test]
    fn nested_items_are_checked() {
        let errors = with(|d| {
            let ms = &mut d["applications"][0]["microservices"][0];
            ms["constraints"] = json!([{"type": "geo", "location": [48.1, 11.6], "convergence_time": 300.5}, {"threshold": 5}]);
            ms["connectivity"] = json!([{"target_microservice_id": 2, "con_constraints": [{"type": "latency"}]}]);
            ms["addresses"] = json!([]);
        });
        assert_eq!(
            errors,
            [
                format!("{MS}.addresses: must be an object, got an array"),
                format!("{MS}.constraints[0].location: must be a string, got an array"),
                format!("{MS}.constraints[0].convergence_time: must be an integer, got 300.5"),
                format!("{MS}.constraints[1].type: is required"),
                format!("{MS}.connectivity[0].target_microservice_id: must be a string, got 2"),
                format!("{MS}.connectivity[0].con_constraints[0].threshold: is required"),
                format!("{MS}.connectivity[0].con_constraints[0].rigidness: is required"),
                format!("{MS}.connectivity[0].con_constraints[0].convergence_time: is required"),
            ]
        );
    }

    #[test]
    fn what_the_schema_allows_passes() {
        // Probes from EXPECTED.md §3 that Oakestra accepts.
        for change in [
            (|d: &mut Value| d["applications"][0]["microservices"][0]["memory"] = json!(100.0)) as fn(&mut Value),
            |d| d["applications"][0]["microservices"][0]["virtualization"] = json!("banana"),
            |d| d["applications"][0]["microservices"][0]["constraints"] = json!([{"type": "anything", "rigidness": 5}]),
            |d| d["applications"][0]["microservices"][0]["constraints"] = json!([{"type": "direct", "node": "n1;n2"}]),
            |d| d["applications"][0]["microservices"][0]["constraints"] = json!([{"type": "geo", "convergence_time": 300.0}]),
            |d| d["applications"][0]["microservices"][0]["microserviceID"] = json!(""),
            |d| d["applications"][0]["microservices"] = json!([]),
            |d| d["applications"] = json!([]),
            |d| d["applications"][0]["application_name"] = json!("a".repeat(30)),
            |d| d["applications"][0]["microservices"][0]["vcpu"] = json!(2),
        ] {
            let mut document = minimal();
            change(&mut document);
            assert_eq!(errors_of(&document), Vec::<String>::new(), "{document}");
        }
    }

    #[test]
    fn names_are_read_strictly() {
        let name = "applications[0].application_name";
        assert_eq!(with(|d| d["applications"][0]["application_name"] = json!("a".repeat(31))).len(), 1);
        assert_eq!(with(|d| d["applications"][0]["application_name"] = json!("my-svc")).len(), 1);
        // Python's `$` would let this one through; grove does not.
        assert_eq!(
            with(|d| d["applications"][0]["application_name"] = json!("abc\n")),
            [format!(r#"{name}: must be 1-30 ASCII letters or digits (^[a-zA-Z0-9]{{1,30}}$), got "abc\n""#)]
        );
        assert_eq!(with(|d| d["applications"][0]["application_name"] = json!("m\u{fc}nchen")).len(), 1);
    }

    #[test]
    fn unknown_keys_are_ignored_and_listed() {
        let mut document = minimal();
        document["api_version"] = json!("v0.3.0");
        document["applications"][0]["microservices"][0]["vcpu"] = json!(2);
        document["applications"][0]["microservices"][0]["bandwith_out"] = json!(1);
        document["applications"][0]["microservices"][0]["image"] = json!("x");
        let checked = check(document.to_string().as_bytes());
        assert!(checked.sla.is_ok());
        let listed: Vec<(String, Option<&str>)> = checked.ignored.iter().map(|k| (k.path.to_string(), k.did_you_mean)).collect();
        let has = |path: &str, hint: Option<&str>| listed.contains(&(path.to_owned(), hint));
        assert!(has("api_version", None), "{listed:?}");
        assert!(has(&format!("{MS}.vcpu"), Some("vcpus")), "{listed:?}");
        assert!(has(&format!("{MS}.bandwith_out"), Some("bandwidth_out")), "{listed:?}");
        assert!(has(&format!("{MS}.image"), None), "{listed:?}");
        assert_eq!(checked.ignored.iter().find(|k| k.did_you_mean == Some("vcpus")).map(IgnoredKey::key), Some("vcpu"));
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("vcpu", "vcpus"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert!(!is_typo_of("env", "environment"));
    }
}
