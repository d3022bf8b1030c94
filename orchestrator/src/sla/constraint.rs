//! Placement constraints: Oakestra's `constraints[]` objects, read into what
//! grove's schedulers filter by.
//!
//! Oakestra's schema checks only that `type` is a string; which other fields
//! matter is in `sla/sla_documentation.md` and the schedulers. grove reads:
//!
//! | `type` | fields | grove |
//! |---|---|---|
//! | `geo` | `location` `"lat,lon"`, `threshold` km | [`Constraint::Geo`] |
//! | `latency` | `area` or `location`, `threshold` ms | [`Constraint::Latency`] |
//! | `direct` | `node` (`"n1;n2"`), `cluster` | [`Constraint::Direct`] |
//! | `clusters` | `allowed` | [`Constraint::Direct`] with clusters only |
//!
//! Anything else (`addons`, ...) is refused as unsupported. The `location`
//! string is read as `"lat,lon"` (latitude first, decimal degrees) and
//! nothing else: Oakestra's sources disagree on the order (the
//! documentation says longitude first, the dashboard writes
//! `"(lon,lat)"`), so a parenthesised or out-of-range value is an error
//! rather than a silent swap. `rigidness` and `convergence_time` are checked
//! for range and otherwise not used: grove's constraints are hard filters.

use dns::{Label, Location};
use serde::{Deserialize, Serialize};

use super::path::SlaPath;
use super::spec::grove_label;
use super::v2;
use super::violation::{Rule, Unsupported, Violation};

/// Where a workload may be placed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Constraint {
    /// Within `within_km` (great circle, `dns::haversine_km`) of `near`.
    Geo {
        /// The point.
        near: Location,
        /// The radius, km (> 0).
        within_km: f64,
    },
    /// Where the round trip from `from` is at most `within_ms`.
    Latency {
        /// The users' point or area.
        from: LatencyFrom,
        /// The bound, ms (> 0).
        within_ms: f64,
    },
    /// Only on these clusters and/or nodes (at least one of the two lists is non-empty).
    Direct {
        /// Allowed clusters; empty means any.
        clusters: Vec<Label>,
        /// Allowed nodes; empty means any.
        nodes: Vec<Label>,
    },
}

/// Where latency is measured from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LatencyFrom {
    /// A point (`location`).
    Location(Location),
    /// A named area (`area`, e.g. `munich-1`).
    Area(Label),
}

/// Reads one constraint at `path`; problems go to `out`.
pub fn read_constraint(c: &v2::Constraint, path: &SlaPath, out: &mut Vec<Violation>) -> Option<Constraint> {
    check_tuning(c, path, out);
    match c.kind.as_str() {
        "geo" => read_geo(c, path, out),
        "latency" => read_latency(c, path, out),
        "direct" => read_direct(c, path, out),
        "clusters" => read_clusters(c, path, out),
        other => {
            let found = other.to_owned();
            out.push(Violation::new(path.key("type"), Rule::Unsupported(Unsupported::ConstraintType { found })));
            None
        }
    }
}

/// `"lat,lon"` in decimal degrees, each part trimmed; `None` otherwise.
pub fn parse_location(text: &str) -> Option<Location> {
    let (lat, lon) = text.split_once(',')?;
    let lat: f64 = lat.trim().parse().ok()?;
    let lon: f64 = lon.trim().parse().ok()?;
    // Location::new refuses NaN, infinities and out-of-range degrees.
    Location::new(lat, lon).ok()
}

fn read_geo(c: &v2::Constraint, path: &SlaPath, out: &mut Vec<Violation>) -> Option<Constraint> {
    const WHAT: &str = "a geo constraint";
    let near = match &c.location {
        Some(text) => location(text, &path.key("location"), out),
        None => required_for(WHAT, &path.key("location"), out),
    };
    let within_km = threshold(c, WHAT, path, out);
    Some(Constraint::Geo { near: near?, within_km: within_km? })
}

fn read_latency(c: &v2::Constraint, path: &SlaPath, out: &mut Vec<Violation>) -> Option<Constraint> {
    const WHAT: &str = "a latency constraint";
    let from = match (&c.area, &c.location) {
        (Some(area), None) => grove_label(area, &path.key("area"), out).map(LatencyFrom::Area),
        (None, Some(text)) => location(text, &path.key("location"), out).map(LatencyFrom::Location),
        (area, _) => {
            let both = area.is_some();
            out.push(Violation::new(path.clone(), Rule::EitherOf { what: WHAT, fields: "area or location", both }));
            None
        }
    };
    let within_ms = threshold(c, WHAT, path, out);
    Some(Constraint::Latency { from: from?, within_ms: within_ms? })
}

fn read_direct(c: &v2::Constraint, path: &SlaPath, out: &mut Vec<Violation>) -> Option<Constraint> {
    let clusters = names(c.cluster.as_deref(), &path.key("cluster"), out);
    let nodes = names(c.node.as_deref(), &path.key("node"), out);
    let (clusters, nodes) = (clusters?, nodes?);
    if clusters.is_empty() && nodes.is_empty() {
        let rule = Rule::EitherOf { what: "a direct constraint", fields: "node or cluster (or both)", both: false };
        out.push(Violation::new(path.clone(), rule));
        return None;
    }
    Some(Constraint::Direct { clusters, nodes })
}

fn read_clusters(c: &v2::Constraint, path: &SlaPath, out: &mut Vec<Violation>) -> Option<Constraint> {
    let path = path.key("allowed");
    let allowed = match &c.allowed {
        Some(allowed) if !allowed.is_empty() => allowed,
        _ => return required_for("a clusters constraint", &path, out),
    };
    let before = out.len();
    let clusters: Vec<Label> = allowed.iter().enumerate().filter_map(|(i, name)| grove_label(name, &path.index(i), out)).collect();
    (out.len() == before).then_some(Constraint::Direct { clusters, nodes: Vec::new() })
}

/// `;`-separated names (Oakestra's v0.4 schedulers `split(";")` the node
/// field); `""` or absent is an empty list.
fn names(field: Option<&str>, path: &SlaPath, out: &mut Vec<Violation>) -> Option<Vec<Label>> {
    let Some(text) = field.filter(|text| !text.is_empty()) else { return Some(Vec::new()) };
    let before = out.len();
    let labels: Vec<Label> = text.split(';').filter_map(|name| grove_label(name.trim(), path, out)).collect();
    (out.len() == before).then_some(labels)
}

fn location(text: &str, path: &SlaPath, out: &mut Vec<Violation>) -> Option<Location> {
    let parsed = parse_location(text);
    if parsed.is_none() {
        out.push(Violation::new(path.clone(), Rule::BadLocation { found: text.to_owned() }));
    }
    parsed
}

fn threshold(c: &v2::Constraint, what: &'static str, path: &SlaPath, out: &mut Vec<Violation>) -> Option<f64> {
    let path = path.key("threshold");
    match c.threshold {
        None => required_for(what, &path, out),
        Some(value) if value > 0.0 && value.is_finite() => Some(value),
        Some(_) => {
            out.push(Violation::new(path, Rule::MustBePositive));
            None
        }
    }
}

/// `rigidness` is a share of requests, `convergence_time` seconds.
fn check_tuning(c: &v2::Constraint, path: &SlaPath, out: &mut Vec<Violation>) {
    if c.rigidness.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
        out.push(Violation::new(path.key("rigidness"), Rule::NotAFraction));
    }
    if c.convergence_time.is_some_and(|t| t.0 < 0) {
        out.push(Violation::new(path.key("convergence_time"), Rule::MustNotBeNegative));
    }
}

fn required_for<T>(what: &'static str, path: &SlaPath, out: &mut Vec<Violation>) -> Option<T> {
    out.push(Violation::new(path.clone(), Rule::RequiredFor { what }));
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(value: serde_json::Value) -> Result<Constraint, Vec<String>> {
        let c: v2::Constraint = serde_json::from_value(value).expect("a constraint object");
        let mut out = Vec::new();
        let path = SlaPath::root().key("constraints").index(0);
        match read_constraint(&c, &path, &mut out) {
            Some(constraint) if out.is_empty() => Ok(constraint),
            _ => Err(out.iter().map(ToString::to_string).collect()),
        }
    }

    fn label(name: &str) -> Label {
        Label::parse(name).expect("label")
    }

    #[test]
    fn geo() {
        let c = read(json!({"type": "geo", "location": "48.137, 11.575", "threshold": 120, "rigidness": 0.9})).expect("geo");
        assert_eq!(c, Constraint::Geo { near: Location { lat: 48.137, lon: 11.575 }, within_km: 120.0 });
        assert_eq!(
            read(json!({"type": "geo"})),
            Err(vec![
                "constraints[0].location: is required for a geo constraint".into(),
                "constraints[0].threshold: is required for a geo constraint".into()
            ])
        );
    }

    #[test]
    fn bad_points_and_thresholds_name_the_field() {
        for location in ["(11.575,48.137)", "48.1", "91,0", "0,181", "NaN,0", "48.1,11.5,3", ""] {
            let errors = read(json!({"type": "geo", "location": location, "threshold": 5})).expect_err(location);
            assert_eq!(errors.len(), 1, "{location}: {errors:?}");
            assert!(errors[0].starts_with("constraints[0].location: must be \"lat,lon\""), "{errors:?}");
        }
        assert_eq!(
            read(json!({"type": "geo", "location": "0,0", "threshold": -5})),
            Err(vec!["constraints[0].threshold: must be > 0".into()])
        );
        assert_eq!(
            read(json!({"type": "latency", "area": "munich-1", "threshold": 0})),
            Err(vec!["constraints[0].threshold: must be > 0".into()])
        );
        assert_eq!(
            read(json!({"type": "geo", "location": "0,0", "threshold": 1, "rigidness": 5, "convergence_time": -1})),
            Err(vec!["constraints[0].rigidness: must be between 0 and 1".into(), "constraints[0].convergence_time: must be >= 0".into()])
        );
    }

    #[test]
    fn latency_from_an_area_or_a_point() {
        // As in Oakestra's sla_correct_1.json.
        let c = read(json!({"type": "latency", "area": "munich-1", "threshold": 100, "rigidness": 0.99, "convergence_time": 300}));
        assert_eq!(c, Ok(Constraint::Latency { from: LatencyFrom::Area(label("munich-1")), within_ms: 100.0 }));
        let c = read(json!({"type": "latency", "location": "60.17,24.94", "threshold": 20}));
        assert_eq!(c, Ok(Constraint::Latency { from: LatencyFrom::Location(Location { lat: 60.17, lon: 24.94 }), within_ms: 20.0 }));
        assert_eq!(
            read(json!({"type": "latency", "threshold": 20})),
            Err(vec!["constraints[0]: a latency constraint needs area or location".into()])
        );
        assert_eq!(
            read(json!({"type": "latency", "area": "x", "location": "0,0", "threshold": 20})),
            Err(vec!["constraints[0]: a latency constraint takes area or location, not both".into()])
        );
    }

    #[test]
    fn direct_and_clusters() {
        let c = read(json!({"type": "direct", "node": "xavier1;Xavier2", "cluster": "gpu"}));
        assert_eq!(c, Ok(Constraint::Direct { clusters: vec![label("gpu")], nodes: vec![label("xavier1"), label("xavier2")] }));
        let c = read(json!({"type": "direct", "cluster": "gpu"}));
        assert_eq!(c, Ok(Constraint::Direct { clusters: vec![label("gpu")], nodes: vec![] }));
        assert_eq!(
            read(json!({"type": "direct", "node": ""})),
            Err(vec!["constraints[0]: a direct constraint needs node or cluster (or both)".into()])
        );
        let errors = read(json!({"type": "direct", "node": "n1;;n_2"})).expect_err("bad names");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[1].starts_with("constraints[0].node: \"n_2\" is not a grove name"), "{errors:?}");
        let c = read(json!({"type": "clusters", "allowed": ["cluster1", "cluster2"]}));
        assert_eq!(c, Ok(Constraint::Direct { clusters: vec![label("cluster1"), label("cluster2")], nodes: vec![] }));
        assert_eq!(
            read(json!({"type": "clusters", "allowed": []})),
            Err(vec!["constraints[0].allowed: is required for a clusters constraint".into()])
        );
    }

    #[test]
    fn other_types_are_unsupported() {
        assert_eq!(
            read(json!({"type": "addons", "needs": ["FLOps"]})),
            Err(vec![
                "constraints[0].type: constraint type \"addons\" is not supported by grove; supported: geo, latency, direct, clusters"
                    .into()
            ])
        );
        assert!(read(json!({"type": "Geo"})).is_err());
    }
}
