//! Oakestra's SLA v2.0 JSON Schema, as data.
//!
//! A transcription of `sla_schema` in oakestra/oakestra
//! `root_orchestrator/system-manager-python/sla/schema.py` (blob 73321ce4,
//! develop 0e879834), which Oakestra checks with `jsonschema.validate`
//! (Draft 2020-12: no `$schema` is given). The schema uses only `type`,
//! `properties`, `required`, `items`, `pattern` (one pattern) and
//! `maxLength` (one, 0), so a table of [`Shape`]s says all of it. A unit test
//! holds this table against the schema's JSON text (`tests/oakestra-slas/schema.json`),
//! keyword by keyword.
//!
//! What the schema does not say, grove does not check here either: there is
//! no `additionalProperties: false` (unknown keys are ignored), no `enum`
//! (`virtualization: "banana"` passes), no `minItems` (`applications: []`
//! passes), and the `"exclusiveMinimum": 0` on the `microservices` array is
//! a no-op (it applies to numbers only). grove's own rules come later, in
//! [`super::spec`].

/// What the schema says about one value.
#[derive(Debug)]
pub enum Shape {
    /// `{"type": "string"}`
    String,
    /// `{"type": "string", "pattern": "^[a-zA-Z0-9]{1,30}$"}`: app and service names.
    Name,
    /// `{"type": "string", "maxLength": 0}`: `microserviceID`, which clients may not choose.
    EmptyString,
    /// `{"type": "integer"}`
    Integer,
    /// `{"type": "number"}`
    Number,
    /// `{"type": "boolean"}` (the schema's `default: false` is not applied by validation)
    Boolean,
    /// `{"type": "object"}` with nothing said about its members.
    AnyObject,
    /// `{"type": "array", "items": ...}`
    Array(&'static Shape),
    /// `{"type": "object", "properties": ..., "required": ...}`
    Object(&'static ObjectShape),
}

/// The members of an object the schema describes.
#[derive(Debug)]
pub struct ObjectShape {
    /// `properties`, in the schema's order.
    pub properties: &'static [(&'static str, Shape)],
    /// `required`.
    pub required: &'static [&'static str],
}

impl ObjectShape {
    /// True when `name` is in `required`.
    pub fn requires(&self, name: &str) -> bool {
        self.required.contains(&name)
    }
}

const STRINGS: Shape = Shape::Array(&Shape::String);

/// The whole document.
pub static SLA: Shape = Shape::Object(&ObjectShape {
    properties: &[
        ("sla_version", Shape::String),
        ("customerID", Shape::String),
        ("applications", Shape::Array(&Shape::Object(&APPLICATION))),
        ("args", STRINGS),
    ],
    required: &["sla_version", "customerID", "applications"],
});

static APPLICATION: ObjectShape = ObjectShape {
    properties: &[
        ("applicationID", Shape::String),
        ("application_name", Shape::Name),
        ("application_namespace", Shape::Name),
        ("application_desc", Shape::String),
        ("microservices", Shape::Array(&Shape::Object(&MICROSERVICE))),
    ],
    required: &["application_name", "application_namespace", "microservices"],
};

/// One `microservices[]` item (Oakestra's `sla_microservice_schema`).
pub static MICROSERVICE: ObjectShape = ObjectShape {
    properties: &[
        ("microserviceID", Shape::EmptyString),
        ("microservice_name", Shape::Name),
        ("microservice_namespace", Shape::Name),
        ("virtualization", Shape::String),
        ("volumes", Shape::Array(&Shape::Object(&VOLUME))),
        ("memory", Shape::Integer),
        ("vcpus", Shape::Integer),
        ("vgpus", Shape::Integer),
        ("vtpus", Shape::Integer),
        ("bandwidth_in", Shape::Integer),
        ("bandwidth_out", Shape::Integer),
        ("storage", Shape::Integer),
        ("code", Shape::String),
        ("state", Shape::String),
        ("port", Shape::String),
        ("one_shot", Shape::Boolean),
        ("privileged", Shape::Boolean),
        ("cmd", STRINGS),
        ("environment", STRINGS),
        ("sla_violation_strategy", Shape::String),
        ("target_node", Shape::String),
        ("addresses", Shape::Object(&ADDRESSES)),
        ("added_files", STRINGS),
        ("args", STRINGS),
        ("constraints", Shape::Array(&Shape::Object(&CONSTRAINT))),
        ("connectivity", Shape::Array(&Shape::Object(&CONNECTIVITY))),
    ],
    required: &["microservice_name", "microservice_namespace", "virtualization", "code"],
};

static VOLUME: ObjectShape = ObjectShape {
    properties: &[("volume_id", Shape::String), ("csi_driver", Shape::String), ("mount_path", Shape::String), ("config", Shape::AnyObject)],
    required: &["volume_id", "csi_driver"],
};

static ADDRESSES: ObjectShape = ObjectShape {
    properties: &[
        ("rr_ip", Shape::String),
        ("rr_ip_v6", Shape::String),
        ("closest_ip", Shape::String),
        ("closest_ip_v6", Shape::String),
        ("instances", Shape::Array(&Shape::Object(&INSTANCE_ADDRESS))),
    ],
    required: &[],
};

static INSTANCE_ADDRESS: ObjectShape =
    ObjectShape { properties: &[("from", Shape::String), ("to", Shape::String), ("start", Shape::String)], required: &[] };

static CONSTRAINT: ObjectShape = ObjectShape {
    properties: &[
        ("type", Shape::String),
        ("area", Shape::String),
        ("cluster", Shape::String),
        ("node", Shape::String),
        ("location", Shape::String),
        ("threshold", Shape::Number),
        ("rigidness", Shape::Number),
        ("convergence_time", Shape::Integer),
        ("needs", STRINGS),
        ("allowed", STRINGS),
    ],
    required: &["type"],
};

static CONNECTIVITY: ObjectShape = ObjectShape {
    properties: &[("target_microservice_id", Shape::String), ("con_constraints", Shape::Array(&Shape::Object(&CON_CONSTRAINT)))],
    required: &["target_microservice_id", "con_constraints"],
};

static CON_CONSTRAINT: ObjectShape = ObjectShape {
    properties: &[
        ("type", Shape::String),
        ("threshold", Shape::Number),
        ("rigidness", Shape::Number),
        ("convergence_time", Shape::Integer),
    ],
    required: &["type", "threshold", "rigidness", "convergence_time"],
};

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;

    /// Oakestra's schema as JSON (copied from oakestra/oakestra; see the fixtures' EXPECTED.md).
    const OAKESTRA_SCHEMA: &str = include_str!("../../tests/oakestra-slas/schema.json");

    fn keywords(schema: &Value) -> &Map<String, Value> {
        schema.as_object().unwrap_or_else(|| panic!("schema node is not an object: {schema}"))
    }

    /// Checks `shape` against one schema node, keyword by keyword; returns what differs.
    fn compare(shape: &Shape, schema: &Value, at: &str, out: &mut Vec<String>) {
        let node = keywords(schema);
        // Keywords validation ignores (annotations) or that are no-ops here.
        let mut expected: Map<String, Value> =
            node.iter().filter(|(k, _)| !matches!(k.as_str(), "default")).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut take = |key: &str| expected.remove(key);
        let ty = take("type");
        let wanted = |t: &str| Some(json!(t));
        match shape {
            Shape::String | Shape::Name | Shape::EmptyString => {
                if ty != wanted("string") {
                    out.push(format!("{at}: type {ty:?}, grove says string"));
                }
                let pattern = take("pattern");
                let max_length = take("maxLength");
                let (want_pattern, want_max) = match shape {
                    Shape::Name => (Some(json!("^[a-zA-Z0-9]{1,30}$")), None),
                    Shape::EmptyString => (None, Some(json!(0))),
                    _ => (None, None),
                };
                if pattern != want_pattern || max_length != want_max {
                    out.push(format!("{at}: pattern {pattern:?} maxLength {max_length:?} differ from grove's {shape:?}"));
                }
            }
            Shape::Integer | Shape::Number | Shape::Boolean | Shape::AnyObject => {
                let name = match shape {
                    Shape::Integer => "integer",
                    Shape::Number => "number",
                    Shape::Boolean => "boolean",
                    _ => "object",
                };
                if ty != wanted(name) {
                    out.push(format!("{at}: type {ty:?}, grove says {name}"));
                }
                if matches!(shape, Shape::AnyObject) && take("properties").is_some() {
                    out.push(format!("{at}: has properties, grove says any object"));
                }
            }
            Shape::Array(items) => {
                if ty != wanted("array") {
                    out.push(format!("{at}: type {ty:?}, grove says array"));
                }
                // A no-op on arrays (see the module comment).
                take("exclusiveMinimum");
                match take("items") {
                    Some(item_schema) => compare(items, &item_schema, &format!("{at}[]"), out),
                    None => out.push(format!("{at}: no items")),
                }
            }
            Shape::Object(object) => {
                if ty != wanted("object") {
                    out.push(format!("{at}: type {ty:?}, grove says object"));
                }
                let properties = take("properties").unwrap_or_else(|| json!({}));
                let properties = keywords(&properties);
                let names: Vec<&str> = object.properties.iter().map(|(name, _)| *name).collect();
                let theirs: Vec<&str> = properties.keys().map(String::as_str).collect();
                let (mut a, mut b) = (names.clone(), theirs.clone());
                a.sort_unstable();
                b.sort_unstable();
                if a != b {
                    out.push(format!("{at}: properties {theirs:?}, grove has {names:?}"));
                }
                for (name, inner) in object.properties {
                    if let Some(schema) = properties.get(*name) {
                        compare(inner, schema, &format!("{at}.{name}"), out);
                    }
                }
                let required = take("required").unwrap_or_else(|| json!([]));
                if required != json!(object.required) {
                    out.push(format!("{at}: required {required}, grove has {:?}", object.required));
                }
            }
        }
        if !expected.is_empty() {
            out.push(format!("{at}: keywords grove does not model: {:?}", expected.keys().collect::<Vec<_>>()));
        }
    }

    #[test]
    fn the_table_is_oakestras_schema() {
        let schema: Value = serde_json::from_str(OAKESTRA_SCHEMA).expect("schema.json is JSON");
        let mut differences = Vec::new();
        compare(&SLA, &schema, "$", &mut differences);
        assert!(differences.is_empty(), "grove's schema table differs from Oakestra's:\n{}", differences.join("\n"));
    }

    #[test]
    fn the_comparison_notices_a_difference() {
        let mut schema: Value = serde_json::from_str(OAKESTRA_SCHEMA).expect("schema.json is JSON");
        schema["required"] = json!(["sla_version"]);
        schema["properties"]["customerID"]["type"] = json!("integer");
        let mut differences = Vec::new();
        compare(&SLA, &schema, "$", &mut differences);
        assert_eq!(differences.len(), 2, "{differences:?}");
    }
}
