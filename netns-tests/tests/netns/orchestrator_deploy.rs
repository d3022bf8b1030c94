//! The orchestration tiers from a user's side, on [`Orchestra`]s (real
//! `grove root`/`cluster`/`worker` processes beside real netmanagers on the
//! emulated WAN): a service spread over two clusters and reached by
//! `closest.<service>` from a third site through the mesh (deployed with
//! the `grove` CLI), every constraint type obeyed and violated with a
//! reason, no capacity, bad SLAs, tokens, logs, scale and removal.
//!
//! Each test builds its own orchestra (≤ 4 netmanagers) with unique member
//! names, so they run in parallel.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netns_tests::orchestra::{
    anywhere, direct_cluster, direct_nodes, echo_http, echo_service, frankfurt, geo, latency_area, latency_at, microservice, milan, munich,
    sla, wait_for, Orchestra, OrchestraBuilder, Role::*,
};
use orchestrator::api::types::{LogsView, ServiceView};
use orchestrator::model::InstanceState;

use super::support::need_root;

fn build(o: OrchestraBuilder) -> Orchestra {
    need_root();
    o.build().unwrap_or_else(|e| panic!("orchestra: {e}"))
}

fn assert_created(o: &Orchestra, (status, body): (u16, serde_json::Value)) {
    assert_eq!(status, 201, "POST /v1/apps: {body}\n{}", o.logs(20));
}

/// Between Frankfurt and Munich (~155 km from each), ~410 km from Milan.
const MIDDLE: (f64, f64) = (49.1, 10.1);

/// (a) Two instances, one per site (each worker has room for one), a geo
/// constraint that keeps them out of Milan; from Milan `closest` names the
/// Munich one (the nearer), and HTTP through the mesh reaches both. The
/// deploy goes through `grove deploy -o json` and `grove status -o json`.
#[test]
fn orchestrator_two_clusters_closest_from_a_third_site_is_the_nearer_instance() {
    let o = build(
        Orchestra::builder()
            .node("fra", frankfurt(), &[Root, Cluster, Worker])
            .node("muc", munich(), &[Cluster, Worker])
            .node("mil", milan(), &[Cluster, Worker])
            .worker_memory("fra", 96)
            .worker_memory("muc", 96)
            .worker_memory("mil", 96),
    );
    let file = o.dir().join("web.json");
    std::fs::write(&file, sla("shop", &[echo_service("web", 2, geo(MIDDLE.0, MIDDLE.1, 250.0))])).expect("write SLA");
    let started = Instant::now();
    let out = o.cli(&["deploy", &file.display().to_string(), "--wait", "60", "-o", "json"]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "grove deploy failed ({}): {stdout}\n{}\n{}", out.status, String::from_utf8_lossy(&out.stderr), o.logs(25));
    let views: Vec<ServiceView> = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("grove deploy -o json: {e}: {stdout}"));
    assert_eq!(views.len(), 1, "{stdout}");
    assert_eq!(views[0].running(), 2, "{stdout}");
    eprintln!("grove deploy: 2 instances RUNNING {:.2} s after the call", took.as_secs_f64());

    let out = o.cli(&["status", "web.shop.prod", "-o", "json"]);
    let view: ServiceView = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("grove status -o json: {e}: {out:?}"));
    assert_eq!(view.closest, "closest.web.shop.prod.grove");
    let on = |key: &str| {
        let name = o.name(key);
        view.instances.iter().find(|i| i.node.as_deref() == Some(name.as_str())).and_then(|i| i.address)
    };
    let (Some(at_fra), Some(at_muc)) = (on("fra"), on("muc")) else {
        panic!("not one instance in Frankfurt and one in Munich: {}", serde_json::to_string_pretty(&view).unwrap_or_default())
    };
    assert!(on("mil").is_none(), "an instance in Milan despite the geo constraint");
    assert!(view.instances.iter().all(|i| i.cluster == i.node), "each on its own site's cluster: {view:?}");

    let from_milan = o.wait_closest("mil", "web.shop.prod", Duration::from_secs(10), |a| a == [at_muc]);
    assert!(from_milan.is_ok(), "closest.web.shop.prod from Milan: {from_milan:?}, Munich's instance is {at_muc}, Frankfurt's {at_fra}");
    let body = o.http_get("mil", at_muc, 8080).unwrap_or_else(|e| panic!("HTTP to {at_muc} from Milan: {e}"));
    assert!(body.contains("web.shop.prod") && body.contains(&at_muc.to_string()), "{body}");
    let body = o.http_get("mil", at_fra, 8080).unwrap_or_else(|e| panic!("HTTP to {at_fra} from Milan: {e}"));
    assert!(body.contains(&at_fra.to_string()), "{body}");
    // And from each instance's own site, its own instance is the closest.
    assert!(o.wait_closest("fra", "web.shop.prod", Duration::from_secs(5), |a| a == [at_fra]).is_ok());
    assert!(o.wait_closest("muc", "web.shop.prod", Duration::from_secs(5), |a| a == [at_muc]).is_ok());
}

/// (b) One application, one service per constraint case: each obeyed
/// (placed where it says) and each violated (not placed, with a reason
/// naming the rejection, soon — not a hang).
#[test]
fn orchestrator_every_constraint_type_is_obeyed_or_refused_with_a_reason() {
    let o = build(
        Orchestra::builder()
            .node("fra", frankfurt(), &[Root, Cluster, Worker])
            .node("muc1", munich(), &[Cluster, Worker])
            .node("muc2", munich(), &[Worker])
            .node("mil", milan(), &[Cluster, Worker]),
    );
    let (muc1, muc2, mil) = (o.name("muc1"), o.name("muc2"), o.name("mil"));
    let services = [
        echo_service("geook", 1, geo(48.137, 11.575, 50.0)),
        echo_service("geobad", 1, geo(41.90, 12.50, 50.0)),
        echo_service("latok", 1, latency_area(&mil, 5.0)),
        echo_service("latbad", 1, latency_at(41.90, 12.50, 2.0)),
        echo_service("nodeok", 1, direct_nodes(&[&muc2])),
        echo_service("nodebad", 1, direct_nodes(&["nosuchnode"])),
        echo_service("cluok", 1, direct_cluster(&mil)),
        echo_service("clubad", 1, direct_cluster("nosuchcluster")),
    ];
    let asked = Instant::now();
    assert_created(&o, o.deploy(&sla("cons", &services)));

    let placed = |service: &str, ok: &dyn Fn(&str, &str) -> bool| {
        let reference = format!("{service}.cons.prod");
        o.wait_running(&reference, 1, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
        let i = o.running(&reference).remove(0);
        let (cluster, node) = (i.cluster.unwrap_or_default(), i.node.unwrap_or_default());
        assert!(ok(&cluster, &node), "{service}: placed on cluster {cluster}, node {node}");
        eprintln!("{service}: RUNNING on {node} (cluster {cluster})");
    };
    placed("geook", &|c, n| c == muc1 && (n == muc1 || n == muc2));
    placed("latok", &|c, n| c == mil && n == mil);
    placed("nodeok", &|_, n| n == muc2);
    placed("cluok", &|c, _| c == mil);

    for (service, phrase) in [("geobad", "too far"), ("latbad", "too slow"), ("nodebad", "not allowed"), ("clubad", "not allowed")] {
        let reference = format!("{service}.cons.prod");
        let waited = o.wait_service(&reference, Duration::from_secs(5), |v| {
            v.instances.iter().any(|i| i.reason.as_deref().is_some_and(|r| r.contains(phrase)))
        });
        let (_, view) = waited.unwrap_or_else(|e| panic!("{service}: no reason with {phrase:?}: {e}"));
        let i = &view.instances[0];
        assert_ne!(i.state, InstanceState::Running, "{service} runs despite its constraint");
        eprintln!("{service}: {} after {:.2} s: {}", i.state, asked.elapsed().as_secs_f64(), i.reason.as_deref().unwrap_or(""));
    }
    // Still not placed a few seconds later (refused, not merely slow).
    std::thread::sleep(Duration::from_secs(2));
    for service in ["geobad", "latbad", "nodebad", "clubad"] {
        assert!(o.running(&format!("{service}.cons.prod")).is_empty(), "{service} was placed after all");
    }
}

/// (c) An instance no worker has memory for is REQUESTED with a reason
/// that says so, within 2 s of the deploy.
#[test]
fn orchestrator_no_capacity_is_a_clear_state_with_a_reason_within_two_seconds() {
    let o = build(Orchestra::builder().node("fra", frankfurt(), &[Root, Cluster, Worker]).node("muc", munich(), &[Cluster, Worker]));
    let mut huge = echo_service("huge", 1, anywhere());
    huge["memory"] = 1_000_000.into();
    let asked = Instant::now();
    assert_created(&o, o.deploy(&sla("big", &[huge])));
    let (took, view) = o
        .wait_service("huge.big.prod", Duration::from_secs(2), |v| {
            v.instances.iter().any(|i| i.reason.as_deref().is_some_and(|r| r.contains("not enough resources")))
        })
        .unwrap_or_else(|e| panic!("no capacity reason within 2 s: {e}"));
    let i = &view.instances[0];
    assert_eq!(i.state, InstanceState::Requested, "{view:?}");
    eprintln!(
        "no capacity: {} {:.2} s after the POST ({:.2} s polling): {}",
        i.state,
        asked.elapsed().as_secs_f64(),
        took.as_secs_f64(),
        i.reason.as_deref().unwrap_or("")
    );
}

/// (g) Bad SLAs: 400 naming the field's path in `violations`; valid but
/// unsupported (docker) 422; not JSON 400. Nothing is deployed.
#[test]
fn orchestrator_bad_slas_are_refused_with_the_field_path() {
    let o = build(Orchestra::builder().node("fra", frankfurt(), &[Root, Cluster, Worker]));
    let mut zero = echo_service("web", 1, anywhere());
    zero["memory"] = 0.into();
    let (status, body) = o.deploy(&sla("shop", &[zero]));
    assert_eq!(status, 400, "{body}");
    assert!(body["violations"].to_string().contains("applications[0].microservices[0].memory"), "{body}");
    let mut no_vcpus = echo_service("web", 1, anywhere());
    no_vcpus.as_object_mut().map(|m| m.remove("vcpus"));
    let (status, body) = o.deploy(&sla("shop", &[no_vcpus]));
    assert_eq!(status, 400, "{body}");
    assert!(body["violations"].to_string().contains("applications[0].microservices[0].vcpus"), "{body}");
    let mut docker = echo_service("web", 1, anywhere());
    docker["virtualization"] = "docker".into();
    let (status, body) = o.deploy(&sla("shop", &[docker]));
    assert_eq!(status, 422, "{body}");
    assert!(body["violations"].to_string().contains("virtualization"), "{body}");
    let (status, body) = o.deploy("{ this is not json");
    assert_eq!(status, 400, "{body}");
    assert_eq!(o.get("/v1/services"), serde_json::json!([]), "something was deployed");
}

/// (h) Every route but /v1/health needs the token; the token file is 0600.
#[test]
fn orchestrator_api_needs_the_token_but_health_does_not() {
    let o = build(Orchestra::builder().node("fra", frankfurt(), &[Root, Cluster, Worker]));
    assert_eq!(o.api_raw("GET", "/v1/health", None, None).0, 200);
    let post = sla("shop", &[echo_service("web", 1, anywhere())]);
    for (method, path, body) in [("GET", "/v1/services", None), ("GET", "/v1/clusters", None), ("POST", "/v1/apps", Some(post.as_str()))] {
        let (status, answer) = o.api_raw(method, path, None, body);
        assert_eq!(status, 401, "{method} {path} without a token: {answer}");
        let (status, answer) = o.api_raw(method, path, Some("not-the-token-at-all"), body);
        assert_eq!(status, 401, "{method} {path} with a wrong token: {answer}");
    }
    assert_eq!(o.api_raw("GET", "/v1/services", Some(o.token()), None).0, 200);
    assert_eq!(o.get("/v1/services"), serde_json::json!([]), "the refused POST deployed something");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(o.token_file()).expect("token file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the token file is {mode:o}");
}

/// (j) What an instance prints (stdout and stderr) comes back through the API.
#[test]
fn orchestrator_logs_of_an_instance_come_back_through_the_api() {
    let o = build(Orchestra::builder().node("fra", frankfurt(), &[Root, Cluster, Worker]));
    let script = format!("echo to-stdout $GROVE_INSTANCE; echo to-stderr >&2; exec {} --port 8080", echo_http());
    assert_created(&o, o.deploy(&sla("logs", &[microservice("talker", "/bin/sh", &["-c", &script], 1, anywhere())])));
    o.wait_running("talker.logs.prod", 1, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    let want = ["to-stdout instance-", "to-stderr", "listening on"];
    let mut last = serde_json::Value::Null;
    let found = wait_for(Duration::from_secs(10), || {
        last = o.get("/v1/services/talker.logs.prod/logs");
        let logs: LogsView = serde_json::from_value(last.clone()).ok()?;
        let text: String = logs.instances.iter().map(|i| i.text.as_str()).collect();
        want.iter().all(|w| text.contains(w)).then_some(logs)
    });
    let logs = found.unwrap_or_else(|| panic!("logs lack {want:?}: {last}\n{}", o.logs(20)));
    assert_eq!(logs.instances.len(), 1);
    assert!(logs.instances[0].total_bytes > 0);
    assert_eq!(logs.instances[0].node.as_deref(), Some(o.name("fra").as_str()));
}

/// (k) Scale 1 → 3 → 1 changes the RUNNING count (and what `all.` answers);
/// removal undeploys, the service is gone and DNS stops answering it.
#[test]
fn orchestrator_scale_up_down_and_remove() {
    let o = build(Orchestra::builder().node("fra", frankfurt(), &[Root, Cluster, Worker]).node("muc", munich(), &[Cluster, Worker]));
    let web = "web.scale.prod";
    assert_created(&o, o.deploy(&sla("scale", &[echo_service("web", 1, anywhere())])));
    o.wait_running(web, 1, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    let all = |from: &str| {
        let mut a = o.resolve(from, &format!("all.{web}.grove")).addresses;
        a.sort();
        a
    };
    let addresses = |o: &Orchestra| {
        let mut a: Vec<Ipv4Addr> = o.running(web).iter().filter_map(|i| i.address).collect();
        a.sort();
        a
    };

    let (status, body) = o.scale(web, 3);
    assert_eq!(status, 200, "{body}");
    let took = o.wait_running(web, 3, Duration::from_secs(20)).unwrap_or_else(|e| panic!("scale to 3: {e}"));
    eprintln!("scaled 1 → 3 in {:.2} s", took.as_secs_f64());
    let three = addresses(&o);
    let dns = wait_for(Duration::from_secs(10), || (all("muc") == three).then_some(()));
    assert!(dns.is_some(), "all.{web} from muc: {:?}, running at {three:?}", all("muc"));
    for ip in &three {
        o.http_get("muc", *ip, 8080).unwrap_or_else(|e| panic!("instance at {ip}: {e}"));
    }

    let out = o.cli(&["scale", web, "1", "-o", "json"]);
    assert!(out.status.success(), "grove scale: {out:?}");
    let took = o.wait_running(web, 1, Duration::from_secs(20)).unwrap_or_else(|e| panic!("scale to 1: {e}"));
    eprintln!("scaled 3 → 1 in {:.2} s", took.as_secs_f64());
    let one = addresses(&o);
    let dns = wait_for(Duration::from_secs(10), || (all("muc") == one).then_some(()));
    assert!(dns.is_some(), "all.{web} from muc: {:?}, running at {one:?}", all("muc"));
    for ip in three.iter().filter(|ip| !one.contains(ip)) {
        let gone = wait_for(Duration::from_secs(5), || o.http_get("muc", *ip, 8080).is_err().then_some(()));
        assert!(gone.is_some(), "the stopped instance at {ip} still answers");
    }

    let (status, body) = o.api_raw("DELETE", "/v1/apps/scale.prod", Some(o.token()), None);
    assert_eq!(status, 200, "{body}");
    let undeployed = body["services"][0]["instances"].as_array().is_none_or(|is| is.iter().all(|i| i["state"] == "UNDEPLOYED"));
    assert!(undeployed, "DELETE answered {body}");
    assert_eq!(o.service_value(web).0, 404, "the service is still listed");
    assert_eq!(o.get("/v1/services"), serde_json::json!([]));
    let gone = o.wait_closest("muc", web, Duration::from_secs(5), <[Ipv4Addr]>::is_empty);
    assert!(gone.is_ok(), "closest.{web} still answers {gone:?}");
    assert_eq!(o.resolve("fra", &format!("closest.{web}.grove")).rcode, 3, "NXDOMAIN expected");
    let stopped = wait_for(Duration::from_secs(5), || o.http_get("muc", one[0], 8080).is_err().then_some(()));
    assert!(stopped.is_some(), "the removed instance at {} still answers", one[0]);
}
