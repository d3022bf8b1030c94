//! What a user asks grove to run (the *Spec*), read from a schema-valid SLA.
//!
//! This is grove's runtime check, separate from Oakestra's schema: grove runs
//! every microservice as a process in its own network namespace, so
//! `virtualization` must be `"process"` and `code` the absolute path of the
//! executable (`cmd`, then `args`, are its arguments). Names become DNS
//! labels (`dns::Label`; instances are named `<service>.<app>.<namespace>`
//! with the *application's* namespace), memory (MiB) and vCPUs must be given
//! and positive, and everything grove cannot honour is refused, never
//! silently dropped ([`Unsupported`]). Oakestra has no instance count in the
//! SLA (instances are added by deploy calls); grove reads an optional
//! `instances` (1 to [`MAX_INSTANCES`], default 1) per microservice.

use std::collections::HashMap;
use std::path::PathBuf;

use dns::name::SEARCH_MARKER;
use dns::Label;
use serde::{Deserialize, Serialize};

use super::constraint::{read_constraint, Constraint};
use super::path::SlaPath;
use super::port::{parse_ports, PortMapping};
use super::v2::{self, Integer};
use super::violation::{Rule, Unsupported, Violation, Violations};

/// The only virtualization grove runs.
pub const PROCESS: &str = "process";

/// Most instances one service may ask for in its SLA (`grove scale` may go higher).
pub const MAX_INSTANCES: u32 = 1000;

/// Everything one SLA file asks for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlaSpec {
    /// Oakestra's `customerID`.
    pub customer: String,
    /// The applications.
    pub apps: Vec<AppSpec>,
}

impl SlaSpec {
    /// Microservices over all applications.
    pub fn service_count(&self) -> usize {
        self.apps.iter().map(|app| app.services.len()).sum()
    }
}

/// One application.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppSpec {
    /// `application_name`, lowercased.
    pub name: Label,
    /// `application_namespace`, lowercased: the namespace of every instance's DNS name.
    pub namespace: Label,
    /// `application_desc`.
    pub description: Option<String>,
    /// Its services (possibly none yet).
    pub services: Vec<ServiceSpec>,
}

/// One service: a process, its resources, ports and constraints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// `microservice_name`, lowercased.
    pub name: Label,
    /// `microservice_namespace`, lowercased; kept, but DNS names use the application's.
    pub namespace: Label,
    /// What to execute.
    pub command: Command,
    /// `environment`, in order.
    pub environment: Vec<EnvVar>,
    /// What the scheduler reserves.
    pub resources: Resources,
    /// `port`, read.
    pub ports: Vec<PortMapping>,
    /// `constraints` (and a legacy `target_node`), read.
    pub constraints: Vec<Constraint>,
    /// Runs to completion instead of being restarted.
    pub one_shot: bool,
    /// How many instances to run: grove's `instances` field (Oakestra adds
    /// instances by repeated deploy calls instead); 1 when absent.
    pub instances: u32,
}

/// An executable and its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// `code`: an absolute path, checked for existence by the worker, not here.
    pub program: PathBuf,
    /// `cmd` followed by `args`.
    pub args: Vec<String>,
}

/// One environment variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Before the first `=`.
    pub name: String,
    /// After it.
    pub value: String,
}

/// What one instance reserves on a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// `memory`, MiB.
    pub memory_mib: u32,
    /// `vcpus`, whole CPUs.
    pub vcpus: u32,
}

/// A grove name: a DNS label (lowercased) that is not the search-domain
/// marker `svc`. Problems go to `out`.
pub(crate) fn grove_label(text: &str, path: &SlaPath, out: &mut Vec<Violation>) -> Option<Label> {
    match Label::parse(text) {
        Some(label) if label != SEARCH_MARKER => Some(label),
        _ => {
            out.push(Violation::new(path.clone(), Rule::NotAName { found: text.to_owned() }));
            None
        }
    }
}

/// Reads a whole SLA; every problem is collected.
pub fn read_sla(sla: &v2::Sla) -> Result<SlaSpec, Violations> {
    let mut out = Vec::new();
    let root = SlaPath::root().key("applications");
    let mut seen: HashMap<(Label, Label), usize> = HashMap::new();
    let mut apps = Vec::new();
    for (i, app) in sla.applications.iter().enumerate() {
        let path = root.index(i);
        let Some(spec) = read_app(app, &path, &mut out) else { continue };
        if let Some(&first) = seen.get(&(spec.name, spec.namespace)) {
            out.push(Violation::new(path.key("application_name"), Rule::Duplicate { first: root.index(first) }));
        } else {
            seen.insert((spec.name, spec.namespace), i);
        }
        apps.push(spec);
    }
    if out.is_empty() {
        Ok(SlaSpec { customer: sla.customer_id.clone(), apps })
    } else {
        Err(Violations::new(out))
    }
}

fn read_app(app: &v2::Application, path: &SlaPath, out: &mut Vec<Violation>) -> Option<AppSpec> {
    let name = grove_label(&app.application_name, &path.key("application_name"), out);
    let namespace = grove_label(&app.application_namespace, &path.key("application_namespace"), out);
    let root = path.key("microservices");
    let mut seen: HashMap<Label, usize> = HashMap::new();
    let mut services = Vec::new();
    for (i, service) in app.microservices.iter().enumerate() {
        let path = root.index(i);
        let Some(spec) = read_service(service, &path, out) else { continue };
        if let Some(&first) = seen.get(&spec.name) {
            out.push(Violation::new(path.key("microservice_name"), Rule::Duplicate { first: root.index(first) }));
        } else {
            seen.insert(spec.name, i);
        }
        services.push(spec);
    }
    Some(AppSpec { name: name?, namespace: namespace?, description: app.application_desc.clone(), services })
}

fn read_service(ms: &v2::Microservice, path: &SlaPath, out: &mut Vec<Violation>) -> Option<ServiceSpec> {
    let before = out.len();
    let name = grove_label(&ms.microservice_name, &path.key("microservice_name"), out);
    let namespace = grove_label(&ms.microservice_namespace, &path.key("microservice_namespace"), out);
    let command = if ms.virtualization == PROCESS {
        read_command(ms, path, out)
    } else {
        // `code` is then an image or a kernel: nothing grove could check.
        let found = ms.virtualization.clone();
        out.push(unsupported(path.key("virtualization"), Unsupported::Virtualization { found }));
        None
    };
    let environment = read_environment(ms.environment.as_deref().unwrap_or_default(), &path.key("environment"), out);
    let memory_mib = required_amount(ms.memory, &path.key("memory"), "the scheduler reserves memory (MiB) per instance", out);
    let vcpus = required_amount(ms.vcpus, &path.key("vcpus"), "the scheduler reserves whole vCPUs per instance", out);
    let instances = read_instances(ms.instances, &path.key("instances"), out);
    for (field, value, refusal) in [
        ("vgpus", ms.vgpus, Unsupported::Accelerators),
        ("vtpus", ms.vtpus, Unsupported::Accelerators),
        ("bandwidth_in", ms.bandwidth_in, Unsupported::Bandwidth),
        ("bandwidth_out", ms.bandwidth_out, Unsupported::Bandwidth),
        ("storage", ms.storage, Unsupported::Storage),
    ] {
        zero_only(value, &path.key(field), refusal, out);
    }
    let ports = match parse_ports(ms.port.as_deref().unwrap_or_default()) {
        Ok(ports) => ports,
        Err(error) => {
            out.push(Violation::new(path.key("port"), Rule::BadPort(error)));
            Vec::new()
        }
    };
    refuse_unsupported(ms, path, out);
    let mut constraints = Vec::new();
    for (i, c) in ms.constraints.iter().flatten().enumerate() {
        constraints.extend(read_constraint(c, &path.key("constraints").index(i), out));
    }
    // The legacy single-node pin, in the form the schedulers read today.
    if let Some(node) = ms.target_node.as_deref().filter(|node| !node.is_empty()) {
        if let Some(node) = grove_label(node, &path.key("target_node"), out) {
            constraints.push(Constraint::Direct { clusters: Vec::new(), nodes: vec![node] });
        }
    }
    if out.len() > before {
        return None;
    }
    Some(ServiceSpec {
        name: name?,
        namespace: namespace?,
        command: command?,
        environment,
        resources: Resources { memory_mib: memory_mib?, vcpus: vcpus? },
        ports,
        constraints,
        one_shot: ms.one_shot.unwrap_or(false),
        instances: instances?,
    })
}

fn read_command(ms: &v2::Microservice, path: &SlaPath, out: &mut Vec<Violation>) -> Option<Command> {
    let before = out.len();
    let code = path.key("code");
    if ms.code.contains('\0') {
        out.push(Violation::new(code, Rule::ContainsNul));
    } else if !ms.code.starts_with('/') {
        out.push(Violation::new(code, Rule::NotAbsolutePath { found: ms.code.clone() }));
    }
    let mut args = Vec::new();
    for field in ["cmd", "args"] {
        let list = if field == "cmd" { &ms.cmd } else { &ms.args };
        for (i, arg) in list.iter().flatten().enumerate() {
            if arg.contains('\0') {
                out.push(Violation::new(path.key(field).index(i), Rule::ContainsNul));
            }
            args.push(arg.clone());
        }
    }
    (out.len() == before).then(|| Command { program: PathBuf::from(&ms.code), args })
}

fn read_environment(entries: &[String], path: &SlaPath, out: &mut Vec<Violation>) -> Vec<EnvVar> {
    let mut vars = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = path.index(i);
        match entry.split_once('=') {
            _ if entry.contains('\0') => out.push(Violation::new(path, Rule::ContainsNul)),
            Some((name, value)) if !name.is_empty() => vars.push(EnvVar { name: name.to_owned(), value: value.to_owned() }),
            _ => out.push(Violation::new(path, Rule::NotAnAssignment { found: entry.clone() })),
        }
    }
    vars
}

/// Fields whose mere presence asks for something grove does not do.
fn refuse_unsupported(ms: &v2::Microservice, path: &SlaPath, out: &mut Vec<Violation>) {
    let non_empty = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    let mut refuse = |field: &'static str, asked: bool, what: Unsupported| {
        if asked {
            out.push(unsupported(path.key(field), what));
        }
    };
    refuse("volumes", ms.volumes.as_ref().is_some_and(|v| !v.is_empty()), Unsupported::Volumes);
    refuse("added_files", ms.added_files.as_ref().is_some_and(|f| !f.is_empty()), Unsupported::AddedFiles);
    refuse("state", non_empty(&ms.state), Unsupported::State);
    refuse("privileged", ms.privileged == Some(true), Unsupported::Privileged);
    refuse("sla_violation_strategy", non_empty(&ms.sla_violation_strategy), Unsupported::ViolationStrategy);
    let asks_service_ip = ms.addresses.as_ref().is_some_and(|a| {
        [&a.rr_ip, &a.rr_ip_v6, &a.closest_ip, &a.closest_ip_v6].into_iter().any(non_empty)
            || a.instances.as_ref().is_some_and(|i| !i.is_empty())
    });
    refuse("addresses", asks_service_ip, Unsupported::ServiceIp);
    for (i, link) in ms.connectivity.iter().flatten().enumerate() {
        if !link.con_constraints.is_empty() {
            out.push(unsupported(path.key("connectivity").index(i).key("con_constraints"), Unsupported::Connectivity));
        }
    }
}

/// A positive amount that fits the Spec's `u32`.
fn required_amount(value: Option<Integer>, path: &SlaPath, why: &'static str, out: &mut Vec<Violation>) -> Option<u32> {
    let rule = match value {
        None => Rule::RequiredByGrove { why },
        Some(Integer(n)) if n <= 0 => Rule::MustBePositive,
        Some(Integer(n)) => match u32::try_from(n) {
            Ok(n) => return Some(n),
            Err(_) => Rule::TooLarge { max: u64::from(u32::MAX) },
        },
    };
    out.push(Violation::new(path.clone(), rule));
    None
}

/// grove's instance count: absent is 1; else 1 to [`MAX_INSTANCES`].
fn read_instances(value: Option<Integer>, path: &SlaPath, out: &mut Vec<Violation>) -> Option<u32> {
    let rule = match value {
        None => return Some(1),
        Some(Integer(n)) if n <= 0 => Rule::MustBePositive,
        Some(Integer(n)) if n > i64::from(MAX_INSTANCES) => Rule::TooLarge { max: u64::from(MAX_INSTANCES) },
        Some(Integer(n)) => return u32::try_from(n).ok(),
    };
    out.push(Violation::new(path.clone(), rule));
    None
}

/// An amount grove does not schedule: only 0 (or absent) is accepted.
fn zero_only(value: Option<Integer>, path: &SlaPath, refusal: Unsupported, out: &mut Vec<Violation>) {
    match value {
        None | Some(Integer(0)) => {}
        Some(Integer(n)) if n < 0 => out.push(Violation::new(path.clone(), Rule::MustNotBeNegative)),
        Some(_) => out.push(unsupported(path.clone(), refusal)),
    }
}

fn unsupported(path: SlaPath, what: Unsupported) -> Violation {
    Violation::new(path, Rule::Unsupported(what))
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
