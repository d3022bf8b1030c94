//! The camera pipeline of `examples/` (camera → `closest.anonymise` →
//! `closest.detect`) on an [`Orchestra`], for the demo, its test and the
//! `pipeline` bench: the demo's sites (a Frankfurt cloud, Munich and Milan
//! edges), the SLA file deployed with `grove deploy`, and cameras running
//! in workload namespaces of the edge sites' cluster nodes (a camera box
//! runs netmanager too), reading their one-JSON-object-a-second reports.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::orchestra::{frankfurt, milan, munich, Orchestra, OrchestraBuilder, Outcome, Role::*};
use crate::{bin_path, ChildGuard, Signal};

/// The anonymiser service, as the root names it.
pub const ANONYMISE: &str = "anonymise.pipeline.prod";
/// The detector service.
pub const DETECT: &str = "detect.pipeline.prod";

/// `examples/sla/pipeline.json`, in this source tree.
pub fn sla_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/sla/pipeline.json")
}

/// The demo's sites: Frankfurt (root, cloud cluster, one worker: the
/// detector's), Munich (a cluster node with the camera, two workers: one
/// runs the anonymiser, the other takes it over) and Milan (a cluster node
/// with the camera, one worker).
pub fn topology() -> OrchestraBuilder {
    Orchestra::builder()
        .node("fra", frankfurt(), &[Root, Cluster, Worker])
        .node("muc", munich(), &[Cluster])
        .node("mucwa", munich(), &[Worker])
        .node("mucwb", munich(), &[Worker])
        .node("mil", milan(), &[Cluster])
        .node("milw", milan(), &[Worker])
}

/// A camera process and where its reports go.
#[derive(Debug)]
pub struct Camera {
    /// Its name (`munich`, `milan`).
    pub name: String,
    /// The node it runs beside.
    pub key: String,
    /// Its workload's address.
    pub address: Ipv4Addr,
    /// Its workload namespace.
    pub netns: String,
    out: PathBuf,
    child: Option<ChildGuard>,
}

/// An orchestra with the pipeline's cameras; dropping it stops the
/// cameras, then the orchestra.
#[derive(Debug)]
pub struct Pipeline {
    cameras: Vec<Camera>,
    /// The platform underneath.
    pub o: Orchestra,
}

impl Pipeline {
    /// Builds `builder`'s orchestra (see [`topology`]).
    pub fn build(builder: OrchestraBuilder) -> Outcome<Pipeline> {
        Ok(Pipeline { cameras: Vec::new(), o: builder.build()? })
    }

    /// `grove deploy examples/sla/pipeline.json --wait <wait>` with the
    /// examples' binaries where this build put them: how long until every
    /// instance ran, and what `grove deploy` printed.
    pub fn deploy(&self, wait: Duration) -> Outcome<(Duration, String)> {
        let anonymise = bin_path("anonymise").map_err(|e| e.to_string())?;
        let bin_dir = anonymise.parent().ok_or("the binaries' directory")?.display().to_string();
        bin_path("detect").map_err(|e| e.to_string())?;
        let file = sla_file().display().to_string();
        let started = Instant::now();
        let out = self.o.cli_env(&[("GROVE_EXAMPLES_BIN", &bin_dir)], &["deploy", &file, "--wait", &wait.as_secs().max(1).to_string()]);
        if !out.status.success() {
            return Err(format!(
                "grove deploy {file}: {}\n{}{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.o.logs(15)
            ));
        }
        Ok((started.elapsed(), String::from_utf8_lossy(&out.stdout).into_owned()))
    }

    /// Starts camera `name` in a new workload of node `key` (service
    /// `camera` of app `pipeline`, so `closest.anonymise` resolves through
    /// the app's search list), with `args` added to `camera --json`.
    pub fn start_camera(&mut self, key: &str, name: &str, args: &[&str]) -> Outcome<()> {
        let camera = bin_path("camera").map_err(|e| e.to_string())?;
        let number = self.cameras.len();
        let body = format!(r#"{{"service":"camera","app":"pipeline","namespace":"prod","number":{number}}}"#);
        let (status, created) = self.o.node(key).api("POST", "/v1/workloads", Some(&body)).map_err(|e| format!("camera workload on {key}: {e}"))?;
        if status != 201 {
            return Err(format!("camera workload on {key}: {status} {created}"));
        }
        let netns = created["workload"]["netns"].as_str().ok_or("workload without netns")?.to_owned();
        let address = created["workload"]["address"].as_str().and_then(|a| a.parse().ok()).ok_or("workload without address")?;
        let out = self.o.dir().join(format!("camera-{name}.jsonl"));
        let log = self.o.dir().join(format!("camera-{name}.log"));
        let stdout = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        // `ip netns exec` mounts the workload's resolv.conf over /etc/resolv.conf.
        let child = Command::new("ip")
            .args(["netns", "exec", &netns])
            .arg(&camera)
            .args(["--json", "--name", name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("start {}: {e}", camera.display()))?;
        let child = ChildGuard::new(format!("camera {name}"), child, log);
        self.cameras.push(Camera { name: name.to_owned(), key: key.to_owned(), address, netns, out, child: Some(child) });
        Ok(())
    }

    /// The cameras started.
    pub fn cameras(&self) -> &[Camera] {
        &self.cameras
    }

    /// Every report camera `name` printed so far (per-second ones and
    /// `"event":"switch"` ones).
    pub fn reports(&self, name: &str) -> Vec<Value> {
        let Some(camera) = self.cameras.iter().find(|c| c.name == name) else { return Vec::new() };
        std::fs::read_to_string(&camera.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Its latest per-second report.
    pub fn latest(&self, name: &str) -> Option<Value> {
        self.reports(name).into_iter().rev().find(|r| r.get("event").is_none())
    }

    /// Its changes of anonymiser, in order.
    pub fn switches(&self, name: &str) -> Vec<Value> {
        self.reports(name).into_iter().filter(|r| r["event"] == "switch").collect()
    }

    /// The node key whose subnet holds the address in an instance identity
    /// (`instance-0.anonymise.pipeline.prod@10.18.0.70`).
    pub fn node_of(&self, identity: &str) -> Option<String> {
        let ip: Ipv4Addr = identity.rsplit_once('@')?.1.parse().ok()?;
        self.o.keys().iter().find(|k| self.o.subnet(k).is_some_and(|s| s.contains(&ip))).cloned()
    }

    /// Waits until camera `name` is served by an anonymiser on one of
    /// `nodes` (keys) with a detector answering: the report that showed it.
    pub fn wait_served(&self, name: &str, nodes: &[&str], timeout: Duration) -> Outcome<Value> {
        let start = Instant::now();
        loop {
            let latest = self.latest(name);
            if let Some(r) = &latest {
                let on = r["anonymiser"].as_str().and_then(|a| self.node_of(a));
                if on.as_deref().is_some_and(|k| nodes.contains(&k)) && r["detector"].is_string() && r["fps"].as_u64().unwrap_or(0) > 0 {
                    return Ok(r.clone());
                }
            }
            if start.elapsed() > timeout {
                let log = self.cameras.iter().find(|c| c.name == name).map(|c| c.out.with_extension("log"));
                let tail = log.and_then(|l| std::fs::read_to_string(l).ok()).unwrap_or_default();
                return Err(format!("camera {name} not served from {nodes:?} within {timeout:?}; last report {latest:?}\n{tail}\n{}", self.o.logs(12)));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops camera `name`.
    pub fn stop_camera(&mut self, name: &str) {
        for camera in self.cameras.iter_mut().filter(|c| c.name == name) {
            if let Some(mut child) = camera.child.take() {
                let _ = child.signal(Signal::Int);
                let _ = child.wait_for_exit(Duration::from_secs(3));
            }
        }
    }

    /// The emulated round trip between nodes `a` and `b` (keys): twice the
    /// WAN emulator's one-way delay for their sites.
    pub fn modelled_rtt(&self, a: &str, b: &str) -> Option<Duration> {
        let site = |k: &str| self.o.index(k).and_then(|i| self.o.testbed().node(i).site().cloned());
        Some(2 * crate::geo_one_way_delay(&site(a)?, &site(b)?))
    }

    /// Stops every camera.
    pub fn stop_cameras(&mut self) {
        for camera in &mut self.cameras {
            if let Some(mut child) = camera.child.take() {
                let _ = child.signal(Signal::Int);
                let _ = child.wait_for_exit(Duration::from_secs(3));
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop_cameras();
    }
}
