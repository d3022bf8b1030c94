//! grove's runtime check, through the whole pipeline (JSON in, spec or errors out).

use serde_json::{json, Value};

use super::*;
use crate::sla::constraint::LatencyFrom;
use crate::sla::violation::ViolationKind;
use crate::OrchestratorError;

const MS: &str = "applications[0].microservices[0]";

/// A schema-valid document with one process microservice grove runs.
fn process_sla() -> Value {
    json!({
        "sla_version": "v2.0",
        "customerID": "Admin",
        "applications": [{
            "application_name": "Cam",
            "application_namespace": "edge",
            "microservices": [{
                "microserviceID": "",
                "microservice_name": "Anonymiser",
                "microservice_namespace": "edge",
                "virtualization": "process",
                "code": "/usr/local/bin/anonymiser",
                "cmd": ["--fps", "2"],
                "args": ["-v"],
                "environment": ["A=1", "B=x=y"],
                "memory": 256,
                "vcpus": 1,
                "vgpus": 0,
                "bandwidth_in": 0,
                "port": "8080;53/udp",
                "state": "",
                "added_files": [],
                "addresses": {},
                "connectivity": [{"target_microservice_id": "x", "con_constraints": []}],
                "constraints": [{"type": "geo", "location": "48.137,11.575", "threshold": 50}],
                "target_node": "munich-cam1"
            }]
        }]
    })
}

fn read_value(value: &Value) -> Result<SlaSpec, OrchestratorError> {
    crate::sla::read(value.to_string().as_bytes())
}

fn refused(change: impl FnOnce(&mut Value)) -> (ViolationKind, Vec<String>) {
    let mut document = process_sla();
    change(&mut document);
    match read_value(&document) {
        Ok(spec) => panic!("accepted: {spec:?}"),
        Err(error) => {
            let kind = match error {
                OrchestratorError::InvalidSla(_) => ViolationKind::Invalid,
                OrchestratorError::UnsupportedSla(_) => ViolationKind::Unsupported,
                other => panic!("not an SLA error: {other}"),
            };
            (kind, error.violations().as_slice().iter().map(ToString::to_string).collect())
        }
    }
}

fn ms(document: &mut Value) -> &mut Value {
    &mut document["applications"][0]["microservices"][0]
}

#[test]
fn a_process_service_is_read_into_a_spec() {
    let spec = read_value(&process_sla()).expect("grove runs this");
    assert_eq!(spec.customer, "Admin");
    assert_eq!(spec.service_count(), 1);
    let app = &spec.apps[0];
    assert_eq!((app.name.as_str(), app.namespace.as_str()), ("cam", "edge"));
    let service = &app.services[0];
    assert_eq!(service.name, "anonymiser");
    assert_eq!(service.command.program, PathBuf::from("/usr/local/bin/anonymiser"));
    assert_eq!(service.command.args, ["--fps", "2", "-v"]);
    assert_eq!(service.environment[1], EnvVar { name: "B".into(), value: "x=y".into() });
    assert_eq!(service.resources, Resources { memory_mib: 256, vcpus: 1 });
    assert_eq!(service.ports.len(), 2);
    assert_eq!(service.constraints.len(), 2, "geo plus the target_node pin");
    assert!(matches!(&service.constraints[1], Constraint::Direct { nodes, .. } if nodes[0] == "munich-cam1"));
    assert!(!service.one_shot);
}

#[test]
fn containers_are_refused_naming_what_grove_runs() {
    let (kind, errors) = refused(|d| ms(d)["virtualization"] = json!("container"));
    assert_eq!(kind, ViolationKind::Unsupported);
    assert_eq!(errors, [format!(r#"{MS}.virtualization: "container" is not supported by grove; supported: process"#)]);
    // Checked at every service, whatever the runtime is called.
    for runtime in ["unikernel", "runsc", "crosvm", "Process"] {
        let (kind, errors) = refused(|d| ms(d)["virtualization"] = json!(runtime));
        assert_eq!((kind, errors.len()), (ViolationKind::Unsupported, 1), "{runtime}");
    }
}

#[test]
fn unsupported_requests_are_each_named() {
    let (kind, errors) = refused(|d| {
        let m = ms(d);
        m["vgpus"] = json!(1);
        m["storage"] = json!(10);
        m["volumes"] = json!([{"volume_id": "v", "csi_driver": "hostpath"}]);
        m["state"] = json!("https://example.com/state.json");
        m["privileged"] = json!(true);
        m["addresses"] = json!({"rr_ip": "10.30.30.30"});
        m["connectivity"] = json!([{"target_microservice_id": "2", "con_constraints": [
            {"type": "latency", "threshold": 50, "rigidness": 0.9, "convergence_time": 300}]}]);
        m["constraints"] = json!([{"type": "addons", "needs": ["FLOps"]}]);
    });
    assert_eq!(kind, ViolationKind::Unsupported);
    let fields: Vec<&str> = errors.iter().map(|e| e.split(": ").next().unwrap_or_default()).collect();
    assert_eq!(
        fields,
        [
            format!("{MS}.vgpus"),
            format!("{MS}.storage"),
            format!("{MS}.volumes"),
            format!("{MS}.state"),
            format!("{MS}.privileged"),
            format!("{MS}.addresses"),
            format!("{MS}.connectivity[0].con_constraints"),
            format!("{MS}.constraints[0].type"),
        ]
    );
    assert!(errors[5].contains("reach the service by name"), "{errors:?}");
}

#[test]
fn resources_must_be_given_and_positive() {
    let (kind, errors) = refused(|d| {
        let m = ms(d).as_object_mut().expect("object");
        m.remove("memory");
        m.insert("vcpus".into(), json!(0));
        m.insert("vtpus".into(), json!(-1));
    });
    assert_eq!(kind, ViolationKind::Invalid);
    assert_eq!(
        errors,
        [
            format!("{MS}.memory: is required by grove: the scheduler reserves memory (MiB) per instance"),
            format!("{MS}.vcpus: must be > 0"),
            format!("{MS}.vtpus: must be >= 0"),
        ]
    );
    let (_, errors) = refused(|d| ms(d)["memory"] = json!(5_000_000_000_u64));
    assert_eq!(errors, [format!("{MS}.memory: must be at most 4294967295")]);
    let (_, errors) = refused(|d| ms(d)["memory"] = json!(-5));
    assert_eq!(errors, [format!("{MS}.memory: must be > 0")]);
}

#[test]
fn invalid_and_unsupported_together_are_invalid() {
    let (kind, errors) = refused(|d| {
        ms(d)["virtualization"] = json!("container");
        ms(d)["memory"] = json!(0);
    });
    assert_eq!(kind, ViolationKind::Invalid);
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn the_process_is_checked() {
    let (_, errors) = refused(|d| ms(d)["code"] = json!("docker.io/library/nginx:latest"));
    assert_eq!(errors, [format!(r#"{MS}.code: must be the absolute path of the executable, got "docker.io/library/nginx:latest""#)]);
    let (_, errors) = refused(|d| ms(d)["cmd"] = json!(["ok", "a\u{0}b"]));
    assert_eq!(errors, [format!("{MS}.cmd[1]: must not contain a NUL byte")]);
    let (_, errors) = refused(|d| ms(d)["environment"] = json!(["A=1", "NOVALUE", "=x"]));
    assert_eq!(
        errors,
        [
            format!(r#"{MS}.environment[1]: must be NAME=value, got "NOVALUE""#),
            format!(r#"{MS}.environment[2]: must be NAME=value, got "=x""#)
        ]
    );
    let (_, errors) = refused(|d| ms(d)["port"] = json!("6000-6010"));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with(&format!(r#"{MS}.port: "6000-6010" is a port range"#)), "{errors:?}");
}

#[test]
fn names_are_dns_labels_and_unique() {
    let (_, errors) = refused(|d| d["applications"][0]["application_namespace"] = json!("svc"));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with(r#"applications[0].application_namespace: "svc" is not a grove name"#), "{errors:?}");
    let (kind, errors) = refused(|d| {
        let copy = ms(d).clone();
        let services = d["applications"][0]["microservices"].as_array_mut().expect("array");
        let mut second = copy;
        second["microservice_name"] = json!("ANONYMISER");
        services.push(second);
    });
    assert_eq!(kind, ViolationKind::Invalid);
    assert_eq!(
        errors,
        ["applications[0].microservices[1].microservice_name: has the same name as applications[0].microservices[0] (names are case-insensitive)"]
    );
    let (_, errors) = refused(|d| {
        let app = d["applications"][0].clone();
        d["applications"].as_array_mut().expect("array").push(app);
    });
    assert_eq!(errors, ["applications[1].application_name: has the same name as applications[0] (names are case-insensitive)"]);
}

#[test]
fn constraints_are_read_with_their_paths() {
    let mut document = process_sla();
    ms(&mut document)["constraints"] = json!([
        {"type": "latency", "area": "munich-1", "threshold": 100, "rigidness": 0.99, "convergence_time": 300},
        {"type": "clusters", "allowed": ["edge1"]}
    ]);
    let spec = read_value(&document).expect("valid");
    let constraints = &spec.apps[0].services[0].constraints;
    assert!(
        matches!(&constraints[0], Constraint::Latency { from: LatencyFrom::Area(area), within_ms } if area == "munich-1" && *within_ms == 100.0)
    );
    assert!(matches!(&constraints[1], Constraint::Direct { clusters, nodes } if clusters[0] == "edge1" && nodes.is_empty()));
    let (_, errors) = refused(|d| {
        ms(d)["constraints"] =
            json!([{"type": "geo", "location": "0,0", "threshold": 1}, {"type": "geo", "location": "(11.5,48.1)", "threshold": -1}])
    });
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with(&format!("{MS}.constraints[1].location: ")), "{errors:?}");
    assert_eq!(errors[1], format!("{MS}.constraints[1].threshold: must be > 0"));
}

#[test]
fn empty_applications_and_services_are_fine() {
    let mut document = process_sla();
    document["applications"][0]["microservices"] = json!([]);
    assert_eq!(read_value(&document).map(|s| s.service_count()).ok(), Some(0));
    document["applications"] = json!([]);
    assert_eq!(read_value(&document).map(|s| s.apps.len()).ok(), Some(0));
}
