//! grove's schema-level check against Oakestra's own verdicts on 88 public
//! SLA files (`tests/oakestra-slas/`, copied from Oakestra's repositories
//! with `expected.json`, which records what Oakestra's `parse_sla_json` does
//! with each: see `tests/oakestra-slas/EXPECTED.md`).
//!
//! Per file, grove must agree with Oakestra on
//! * the verdict (accept or reject),
//! * the reason class of a rejection (not JSON / not an object / the
//!   `sla_version` dispatch / the schema), and for JSON errors the line,
//! * the full list of schema violations (jsonschema's `iter_errors`, path
//!   and keyword), wherever the file is a JSON object, and
//! * the unknown keys the schema ignores.
//!
//! Two rows need reading rather than a lookup: the awx-testbed topology
//! wrappers, whose verdict is for the SLAs embedded at
//! `topology_descriptor.cluster_list[*].sla_descriptor` (the wrapper itself
//! fails the `sla_version` lookup), and the FLOps project files, which are
//! not SLA v2.0 (`verdict: N/A`), where the verdict of `parse_sla_json` is
//! under `oakestra_parse_sla_json`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use orchestrator::sla::schema::{Shape, MICROSERVICE};
use orchestrator::sla::validate::{check, check_schema, check_shape};
use orchestrator::sla::{Rule, SlaPath, SlaSpec, Unsupported, Violation};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("oakestra-slas")
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures_dir().join("expected.json")).expect("expected.json");
    let doc: Value = serde_json::from_str(&text).expect("expected.json is JSON");
    doc["files"].as_array().expect("files").clone()
}

/// Why a document was rejected, in terms both validators share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    NotJson,
    NotObject,
    Version,
    Schema,
}

/// Oakestra's exception, as `expected.json` records it.
fn oakestra_reason(report: &str) -> Reason {
    if report.starts_with("json.JSONDecodeError") {
        Reason::NotJson
    } else if report.starts_with("TypeError") {
        Reason::NotObject
    } else if report.starts_with("KeyError") || report.starts_with("Exception") {
        Reason::Version
    } else {
        assert!(report.starts_with("SLAFormatError"), "unknown Oakestra report {report:?}");
        Reason::Schema
    }
}

fn grove_reason(first: &Violation) -> Reason {
    match &first.rule {
        Rule::NotJson { .. } => Reason::NotJson,
        _ if first.path.is_root() => Reason::NotObject,
        _ if first.path == SlaPath::root().key("sla_version") => Reason::Version,
        _ => Reason::Schema,
    }
}

/// `line 29 column 13` → 29.
fn python_line(report: &str) -> Option<usize> {
    let rest = &report[report.find(": line ")? + ": line ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// A grove path in jsonschema's `json_path` form.
fn json_path(path: &SlaPath) -> String {
    if path.is_root() {
        "$".to_owned()
    } else {
        format!("$.{path}")
    }
}

/// `$.applications[0]: 'x' is a required property [required]` → `$.applications[0].x [required]`:
/// jsonschema reports `required` at the object, grove at the missing member.
fn normalise_oakestra_error(line: &str) -> String {
    let (path, rest) = line.split_once(": ").expect("path: message [keyword]");
    let keyword = rest.rsplit_once(" [").map(|(_, k)| k.trim_end_matches(']')).expect("keyword");
    if keyword == "required" {
        let name = rest.split('\'').nth(1).expect("quoted property");
        format!("{path}.{name} [required]")
    } else {
        format!("{path} [{keyword}]")
    }
}

/// Array indices dropped, as in `expected.json`'s `unknown_keys_ignored`.
fn without_indices(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index && c.is_ascii_digit() => {}
            _ => out.push(c),
        }
    }
    out
}

struct Row {
    file: String,
    oakestra: String,
    grove: String,
    problem: String,
}

/// Compares one document (a file, or an SLA embedded in one).
fn compare_document(file: &str, bytes: &[u8], verdict: &str, report: Option<&str>, rows: &mut Vec<Row>) {
    let checked = check(bytes);
    let grove_verdict = if checked.sla.is_ok() { "ACCEPT" } else { "REJECT" };
    let first = checked.sla.as_ref().err().and_then(|v| v.as_slice().first().cloned());
    let grove = first.as_ref().map_or_else(|| "ACCEPT".to_owned(), |v| format!("REJECT {v}"));
    let oakestra = format!("{verdict} {}", report.unwrap_or(""));
    let mut problems = Vec::new();
    if grove_verdict != verdict {
        problems.push("verdicts differ".to_owned());
    }
    if let (Some(report), Some(first)) = (report, &first) {
        let (theirs, ours) = (oakestra_reason(report), grove_reason(first));
        if theirs != ours {
            problems.push(format!("reason {theirs:?} vs {ours:?}"));
        }
        if let (Reason::NotJson, Rule::NotJson { line, .. }) = (theirs, &first.rule) {
            if python_line(report) != Some(*line) {
                problems.push(format!("JSON error line {:?} vs {line}", python_line(report)));
            }
        }
    }
    rows.push(Row { file: file.to_owned(), oakestra, grove, problem: problems.join("; ") });
}

/// Compares the schema violations and ignored keys with jsonschema's.
fn compare_schema(entry: &Value, value: &Value, rows: &mut Vec<Row>) {
    let file = entry["file"].as_str().unwrap_or_default();
    let report = check_schema(value);
    if let Some(errors) = entry.get("all_schema_errors").and_then(Value::as_array) {
        let theirs: BTreeSet<String> = errors.iter().filter_map(Value::as_str).map(normalise_oakestra_error).collect();
        let ours: BTreeSet<String> =
            report.violations.iter().map(|v| format!("{} [{}]", json_path(&v.path), v.rule.schema_keyword().unwrap_or("?"))).collect();
        if theirs != ours {
            let only_theirs: Vec<_> = theirs.difference(&ours).collect();
            let only_ours: Vec<_> = ours.difference(&theirs).collect();
            rows.push(Row {
                file: file.to_owned(),
                oakestra: format!("{} schema errors", theirs.len()),
                grove: format!("{} schema errors", ours.len()),
                problem: format!("only Oakestra: {only_theirs:?}; only grove: {only_ours:?}"),
            });
        }
    }
    // For a fragment, expected.json lists the keys ignored by the part of the
    // schema the fragment is (see `compare_fragment`), not by the whole.
    let is_fragment = entry["kind"] == "fragment";
    if let Some(keys) = entry.get("unknown_keys_ignored").and_then(Value::as_array).filter(|_| !is_fragment) {
        let theirs: BTreeSet<String> = keys.iter().filter_map(Value::as_str).map(str::to_owned).collect();
        let ours: BTreeSet<String> = report.ignored.iter().map(|k| without_indices(&json_path(&k.path))).collect();
        if theirs != ours {
            rows.push(Row {
                file: file.to_owned(),
                oakestra: format!("ignores {theirs:?}"),
                grove: format!("ignores {ours:?}"),
                problem: "unknown keys differ".to_owned(),
            });
        }
    }
}

/// A `{"microservices": [...]}` upload (the dashboard's "add services"):
/// each item must fit Oakestra's `sla_microservice_schema` as expected.json
/// says (`as_fragment_microservice_errors`), with the same ignored keys.
fn compare_fragment(entry: &Value, value: &Value, rows: &mut Vec<Row>) {
    let Some(expected) = entry.get("as_fragment_microservice_errors").and_then(Value::as_array) else { return };
    let file = entry["file"].as_str().unwrap_or_default();
    let shape = Shape::Object(&MICROSERVICE);
    let services = value["microservices"].as_array().map_or_else(|| vec![value.clone()], Clone::clone);
    let mut errors = Vec::new();
    let mut ignored = BTreeSet::new();
    for service in &services {
        let report = check_shape(service, &shape);
        errors.extend(report.violations.iter().map(ToString::to_string));
        ignored.extend(report.ignored.iter().map(|k| k.path.to_string()));
    }
    let theirs_ignored: BTreeSet<String> = entry["unknown_keys_ignored"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|k| k.trim_start_matches("$.").to_owned())
        .collect();
    if errors.len() != expected.len() || ignored != theirs_ignored {
        rows.push(Row {
            file: file.to_owned(),
            oakestra: format!("{} microservice errors, ignores {theirs_ignored:?}", expected.len()),
            grove: format!("{errors:?}, ignores {ignored:?}"),
            problem: "fragment differs".to_owned(),
        });
    }
}

fn table(rows: &[&Row]) -> String {
    let mut out = String::from("file | Oakestra | grove | problem\n--- | --- | --- | ---\n");
    for row in rows {
        let _ = writeln!(out, "{} | {} | {} | {}", row.file, row.oakestra, row.grove, row.problem);
    }
    out
}

#[test]
fn grove_agrees_with_oakestra_on_every_fixture() {
    let entries = expected();
    assert_eq!(entries.len(), 88, "expected.json lists 88 files");
    let mut rows = Vec::new();
    let mut agreeing_files = 0;
    for entry in &entries {
        let file = entry["file"].as_str().expect("file");
        let bytes = std::fs::read(fixtures_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let before = rows.iter().filter(|r: &&Row| !r.problem.is_empty()).count();
        let (verdict, report) = match entry["verdict"].as_str() {
            // Not SLA v2.0: what parse_sla_json does with it is recorded separately.
            Some("N/A") => {
                let parsed = &entry["oakestra_parse_sla_json"];
                (parsed[0].as_str().expect("verdict"), parsed[1].as_str())
            }
            Some(verdict) => (verdict, entry["oakestra_reports"].as_str()),
            None => panic!("{file}: no verdict"),
        };
        if let Some(embedded) = entry.get("embedded_slas").and_then(Value::as_array) {
            // The wrapper itself: Oakestra fails on the missing sla_version.
            compare_document(file, &bytes, "REJECT", Some("KeyError: 'sla_version'"), &mut rows);
            let wrapper: Value = serde_json::from_slice(&bytes).expect("wrapper is JSON");
            for sla in embedded {
                let at = sla["where"].as_str().expect("where");
                let (list, rest) = at.split_once('[').expect("cluster_list[i].sla_descriptor");
                let (index, _) = rest.split_once(']').expect("index");
                let index: usize = index.parse().expect("index");
                let document = &wrapper["topology_descriptor"][list][index]["sla_descriptor"];
                assert!(document.is_object(), "{file}: nothing at {at}");
                let official = sla["official"][0].as_str().expect("official verdict");
                assert_eq!(official, verdict, "{file}: the row's verdict is the embedded SLAs'");
                let bytes = serde_json::to_vec(document).expect("serialise");
                compare_document(&format!("{file} @ {at}"), &bytes, official, sla["official"][1].as_str(), &mut rows);
                compare_schema(&json_with(sla, "all_schema_errors", "errors"), document, &mut rows);
            }
        } else {
            compare_document(file, &bytes, verdict, report, &mut rows);
            if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
                if value.is_object() {
                    compare_schema(entry, &value, &mut rows);
                    compare_fragment(entry, &value, &mut rows);
                }
            }
        }
        let after = rows.iter().filter(|r| !r.problem.is_empty()).count();
        if after == before {
            agreeing_files += 1;
        }
    }
    let disagreements: Vec<&Row> = rows.iter().filter(|r| !r.problem.is_empty()).collect();
    println!("{agreeing_files}/{} fixtures agree with Oakestra ({} documents compared)", entries.len(), rows.len());
    assert!(disagreements.is_empty(), "grove disagrees with Oakestra:\n{}", table(&disagreements));
}

/// An embedded SLA's entry in the shape `compare_schema` reads (`errors` → `all_schema_errors`).
fn json_with(entry: &Value, key: &str, from: &str) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("file".into(), entry["where"].clone());
    out.insert(key.into(), entry[from].clone());
    Value::Object(out)
}

/// Every SLA Oakestra accepts asks for containers (or unikernels, runsc,
/// ...): grove's runtime check must refuse each of them cleanly, naming the
/// virtualization of every such microservice.
#[test]
fn grove_refuses_what_it_cannot_run_in_every_accepted_fixture() {
    let mut refused = 0;
    for entry in expected().iter().filter(|e| e["verdict"] == "ACCEPT" && e.get("embedded_slas").is_none()) {
        let file = entry["file"].as_str().expect("file");
        let bytes = std::fs::read(fixtures_dir().join(file)).expect("fixture");
        let sla = orchestrator::sla::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        if sla.applications.iter().all(|app| app.microservices.is_empty()) {
            // Nothing to run, so nothing to refuse (`blank_app_without_services`).
            assert!(SlaSpec::try_from(&sla).is_ok(), "{file}");
            continue;
        }
        let error = SlaSpec::try_from(&sla).expect_err(file);
        for (a, app) in sla.applications.iter().enumerate() {
            for (m, ms) in app.microservices.iter().enumerate() {
                let path = SlaPath::root().key("applications").index(a).key("microservices").index(m).key("virtualization");
                let wanted = Rule::Unsupported(Unsupported::Virtualization { found: ms.virtualization.clone() });
                assert!(
                    error.violations().as_slice().iter().any(|v| v.path == path && v.rule == wanted),
                    "{file}: no virtualization refusal at {path}: {error}"
                );
            }
        }
        refused += 1;
    }
    println!("{refused} accepted fixtures refused by grove's runtime check");
    assert!(refused >= 25, "only {refused} accepted fixtures");
}

/// grove's own example SLA passes both checks.
#[test]
fn grove_example_sla_is_accepted() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/grove-slas/camera-pipeline.json");
    let bytes = std::fs::read(path).expect("example");
    let spec = orchestrator::sla::read(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((spec.apps.len(), spec.service_count()), (1, 3));
}
