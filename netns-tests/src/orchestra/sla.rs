//! Oakestra SLA v2.0 documents for the tests: an application, process
//! microservices, and each constraint type.

use serde_json::{json, Value};

use super::{ECHO_PORT, SERVICE_MIB};
use crate::bin_path;


/// An Oakestra SLA v2.0 document: one application `app` in namespace
/// `prod` with these microservices.
pub fn sla(app: &str, microservices: &[Value]) -> String {
    json!({
        "sla_version": "v2.0",
        "customerID": "grove-tests",
        "applications": [{
            "applicationID": "",
            "application_name": app,
            "application_namespace": "prod",
            "application_desc": "netns-tests",
            "microservices": microservices,
        }]
    })
    .to_string()
}

/// A process microservice: `code` (absolute) with `cmd`, 1 vCPU, [`SERVICE_MIB`].
pub fn microservice(name: &str, code: &str, cmd: &[&str], instances: u32, constraints: Value) -> Value {
    json!({
        "microserviceID": "",
        "microservice_name": name,
        "microservice_namespace": "prod",
        "virtualization": "process",
        "code": code,
        "cmd": cmd,
        "memory": SERVICE_MIB,
        "vcpus": 1,
        "instances": instances,
        "constraints": constraints,
    })
}

/// The `echo_http` binary's absolute path.
pub fn echo_http() -> String {
    bin_path("echo_http").map(|p| p.display().to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// An `echo_http` service answering on [`ECHO_PORT`].
pub fn echo_service(name: &str, instances: u32, constraints: Value) -> Value {
    microservice(name, &echo_http(), &["--port", &ECHO_PORT.to_string()], instances, constraints)
}

/// `[{"type":"geo","location":"lat,lon","threshold":km}]`.
pub fn geo(lat: f64, lon: f64, km: f64) -> Value {
    json!([{ "type": "geo", "location": format!("{lat},{lon}"), "threshold": km }])
}

/// `[{"type":"latency","area":member,"threshold":ms}]`.
pub fn latency_area(member: &str, ms: f64) -> Value {
    json!([{ "type": "latency", "area": member, "threshold": ms }])
}

/// `[{"type":"latency","location":"lat,lon","threshold":ms}]`.
pub fn latency_at(lat: f64, lon: f64, ms: f64) -> Value {
    json!([{ "type": "latency", "location": format!("{lat},{lon}"), "threshold": ms }])
}

/// `[{"type":"direct","node":"a;b"}]`.
pub fn direct_nodes(nodes: &[&str]) -> Value {
    json!([{ "type": "direct", "node": nodes.join(";") }])
}

/// `[{"type":"direct","cluster":name}]`.
pub fn direct_cluster(cluster: &str) -> Value {
    json!([{ "type": "direct", "cluster": cluster }])
}

/// No constraints.
pub fn anywhere() -> Value {
    json!([])
}
