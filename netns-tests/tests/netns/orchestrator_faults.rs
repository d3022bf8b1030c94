//! The orchestration tiers when things go wrong, on [`Orchestra`]s: the
//! root SIGKILLed and restarted in the middle of a deployment, a worker's
//! node killed (its instance runs elsewhere and `closest` follows), an
//! instance that keeps crashing (restarted, then FAILED with a reason), and
//! strangers at the tiers' doors (a non-member address at the root's and a
//! cluster's port, a member at the API without the token).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use netns_tests::orchestra::{
    echo_service, frankfurt, geo, microservice, munich, sla, Orchestra, OrchestraBuilder, Role::*, CLUSTER_PORT, WORKER_PORT,
};
use orchestrator::model::InstanceState;
use orchestrator::proto::{Message, Tier, PROTOCOL_VERSION};

use super::support::need_root;

fn build(o: OrchestraBuilder) -> Orchestra {
    need_root();
    o.build().unwrap_or_else(|e| panic!("orchestra: {e}"))
}

/// (d) The root is SIGKILLed right after `POST /v1/apps` returned and
/// started again on its store: the deployment completes and nothing is
/// lost (the app and service are listed, both instances RUNNING, no extra
/// instances); a second restart moves nothing.
#[test]
fn orchestrator_root_killed_mid_deployment_loses_nothing() {
    let mut o = build(Orchestra::builder().node("fra", frankfurt(), &[Root, Cluster, Worker]).node("muc", munich(), &[Cluster, Worker]));
    let (status, body) = o.deploy(&sla("shop", &[echo_service("web", 2, geo(48.137, 11.575, 400.0))]));
    assert_eq!(status, 201, "{body}");
    let posted = Instant::now();
    o.kill_root();
    o.restart_root().unwrap_or_else(|e| panic!("restart: {e}"));
    eprintln!("root killed and back {:.2} s after the POST", posted.elapsed().as_secs_f64());
    let took = o.wait_running("web.shop.prod", 2, Duration::from_secs(30)).unwrap_or_else(|e| panic!("after the restart: {e}"));
    eprintln!("2 RUNNING {:.2} s after the restart", took.as_secs_f64());
    let apps = o.get("/v1/apps");
    assert!(apps.to_string().contains("\"shop\""), "{apps}");
    let services = o.get("/v1/services");
    assert_eq!(services.as_array().map(Vec::len), Some(1), "{services}");
    let view = o.service("web.shop.prod").expect("service");
    assert_eq!((view.wanted, view.instances.len()), (2, 2), "{view:?}");
    let before: Vec<_> = view.instances.iter().map(|i| (i.number, i.node.clone(), i.address)).collect();
    o.restart_root().unwrap_or_else(|e| panic!("second restart: {e}"));
    o.wait_running("web.shop.prod", 2, Duration::from_secs(20)).unwrap_or_else(|e| panic!("after the second restart: {e}"));
    let after: Vec<_> = o.service("web.shop.prod").expect("service").instances.iter().map(|i| (i.number, i.node.clone(), i.address)).collect();
    assert_eq!(before, after, "instances moved or were renumbered by a root restart");
}

/// (e) The node of the worker running the instance is killed (worker and
/// netmanager SIGKILLed): within 5 s the instance is RUNNING on the other
/// worker of the site, `closest` answers its new address, and it answers
/// HTTP there.
#[test]
fn orchestrator_worker_killed_instance_moves_and_closest_follows() {
    let mut o = build(
        Orchestra::builder()
            .node("fra", frankfurt(), &[Root, Cluster, Worker])
            .node("muc1", munich(), &[Cluster])
            .node("muc2", munich(), &[Worker])
            .node("muc3", munich(), &[Worker])
            .worker_of("muc2", "muc1")
            .worker_of("muc3", "muc1"),
    );
    let web = "web.heal.prod";
    let (status, body) = o.deploy(&sla("heal", &[echo_service("web", 1, geo(48.137, 11.575, 50.0))]));
    assert_eq!(status, 201, "{body}");
    o.wait_running(web, 1, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    let first = o.running(web).remove(0);
    let (victim_name, old) = (first.node.clone().expect("node"), first.address.expect("address"));
    let victim = o.key_of(&victim_name).expect("victim key").to_owned();
    assert!(victim == "muc2" || victim == "muc3", "placed on {victim}");
    o.wait_closest("fra", web, Duration::from_secs(10), |a| a == [old]).unwrap_or_else(|a| panic!("closest before: {a:?}, want {old}"));

    let killed = Instant::now();
    o.kill_worker(&victim);
    // The view may name the new node before it carries the new address
    // (seen: RUNNING on the new worker with the dead one's address): wait
    // for an address inside the new node's subnet.
    let mut renamed = None;
    let (moved, view) = o
        .wait_service(web, Duration::from_secs(15), |v| {
            let elsewhere = v.running() == 1
                && v.instances.iter().all(|i| i.state == InstanceState::Running && i.node.as_deref().is_some_and(|n| n != victim_name));
            if elsewhere && renamed.is_none() {
                renamed = Some((killed.elapsed(), v.instances[0].address));
            }
            elsewhere && v.instances.iter().all(|i| i.address.is_some_and(|a| a != old && o.on_node(i.node.as_deref().unwrap_or(""), a)))
        })
        .unwrap_or_else(|e| panic!("not moved off {victim}: {e}"));
    let new = view.instances[0].address.expect("address");
    if let Some((at, address)) = renamed.filter(|(_, a)| *a != Some(new)) {
        eprintln!("note: {:.2} s after the kill the root showed RUNNING on the new node with address {address:?} (the old one is {old})", at.as_secs_f64());
    }
    let answered = o.wait_closest("fra", web, Duration::from_secs(10), |a| a == [new]);
    let dns = killed.elapsed();
    eprintln!(
        "worker {victim} killed: RUNNING on {} at {new} after {:.2} s, closest answers it after {:.2} s",
        view.instances[0].node.as_deref().unwrap_or("?"),
        moved.as_secs_f64(),
        dns.as_secs_f64()
    );
    assert!(answered.is_ok(), "closest after the move: {answered:?}, want {new}");
    let body = o.http_get("fra", new, 8080).unwrap_or_else(|e| panic!("the moved instance at {new}: {e}"));
    assert!(body.contains(&new.to_string()), "{body}");
    assert!(moved < Duration::from_secs(5), "moved after {moved:?} (target 5 s)");
    assert!(dns < Duration::from_secs(5), "closest followed after {dns:?} (target 5 s)");
}

/// (f) An instance that exits 3 after half a second is restarted by its
/// worker (restarts > 0) and, once its restart budget is spent, is FAILED
/// with a reason.
#[test]
fn orchestrator_crashing_instance_is_restarted_then_failed_with_a_reason() {
    let o = build(Orchestra::builder().node("fra", frankfurt(), &[Root, Cluster, Worker]));
    let crash = microservice("crash", "/bin/sh", &["-c", "sleep 0.5; exit 3"], 1, serde_json::json!([]));
    let (status, body) = o.deploy(&sla("lab", &[crash]));
    assert_eq!(status, 201, "{body}");
    let start = Instant::now();
    let mut restarts = 0;
    let mut restarted_at = None;
    let mut failed = None;
    let mut states = Vec::new();
    while start.elapsed() < Duration::from_secs(40) && failed.is_none() {
        if let Some(view) = o.service("crash.lab.prod") {
            for i in &view.instances {
                if states.last() != Some(&i.state) {
                    states.push(i.state);
                }
                if i.restarts > restarts {
                    restarts = i.restarts;
                    restarted_at.get_or_insert(start.elapsed());
                }
                if i.state == InstanceState::Failed && restarts > 0 {
                    failed = i.reason.clone().map(|r| (start.elapsed(), r));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("crash: states {states:?}, restarts {restarts} (first seen at {restarted_at:?}), failed {failed:?}");
    assert!(restarts > 0, "never restarted: states {states:?}\n{}", o.logs(30));
    let (at, reason) = failed.unwrap_or_else(|| panic!("never FAILED with a reason: states {states:?}\n{}", o.logs(30)));
    assert!(reason.contains("exited with code 3") || reason.contains("crashed"), "reason: {reason}");
    eprintln!("FAILED after {:.1} s: {reason}", at.as_secs_f64());
}

/// A hello as the tiers write it: u32 big-endian length, postcard.
fn hello(tier: Tier) -> Vec<u8> {
    let body = postcard::to_allocvec(&Message::Hello { version: PROTOCOL_VERSION, tier, location: None }).expect("encode");
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// The first frame of `bytes`, decoded.
fn first_frame(bytes: &[u8]) -> Option<Message> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    postcard::from_bytes(bytes.get(4..4 + len)?).ok()
}

/// (i) An address outside every member's subnet cannot register as a
/// cluster (hello or garbage: refused and disconnected, nothing listed) or
/// as a worker; a member reaching the root's API over the underlay without
/// the token (or with a wrong one) gets 401.
#[test]
fn orchestrator_non_members_cannot_register_and_members_need_the_token() {
    let o = build(Orchestra::builder().node("fra", frankfurt(), &[Root, Cluster, Worker]).node("muc", munich(), &[Cluster, Worker]));
    let names = |o: &Orchestra| {
        let mut n: Vec<String> = o.clusters().into_iter().map(|c| format!("{}={}", c.name, c.state)).collect();
        n.sort();
        n
    };
    let before = names(&o);
    assert_eq!(before.len(), 2, "{before:?}");
    let workers_before = o.nodes().len();

    let stranger = Ipv4Addr::new(10, 18, 250, 1);
    o.add_address("fra", &format!("{stranger}/32")).expect("address");
    let root_port = SocketAddr::new(o.overlay("fra").expect("overlay").into(), CLUSTER_PORT);
    for (what, payload) in [("a cluster hello", hello(Tier::Cluster)), ("garbage", b"GET / HTTP/1.1\r\n\r\n\xff\xff\xff\xff".to_vec())] {
        let t = Instant::now();
        let (bytes, closed) = o.raw_exchange("fra", stranger, root_port, &payload, Duration::from_secs(8)).unwrap_or_else(|e| panic!("{what}: {e}"));
        eprintln!("non-member {what} to the root: closed={closed} after {:.2} s, answer {:?}", t.elapsed().as_secs_f64(), first_frame(&bytes));
        assert!(closed, "the root kept a non-member's connection ({what}) open");
        if let Some(answer) = first_frame(&bytes) {
            assert!(matches!(answer, Message::Refused { .. }), "the root answered a non-member with {answer:?}");
        }
    }
    let stranger2 = Ipv4Addr::new(10, 18, 250, 2);
    o.add_address("muc", &format!("{stranger2}/32")).expect("address");
    let cluster_port = SocketAddr::new(o.overlay("muc").expect("overlay").into(), WORKER_PORT);
    let (bytes, closed) = o.raw_exchange("muc", stranger2, cluster_port, &hello(Tier::Worker), Duration::from_secs(8)).expect("worker port");
    eprintln!("non-member worker hello to the cluster: closed={closed}, answer {:?}", first_frame(&bytes));
    assert!(closed, "the cluster kept a non-member's connection open");
    assert!(first_frame(&bytes).is_none_or(|m| matches!(m, Message::Refused { .. })), "{:?}", first_frame(&bytes));

    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(names(&o), before, "the cluster list changed");
    assert_eq!(o.nodes().len(), workers_before, "the worker list changed");
    assert!(!o.log_lines(Root, "refused a cluster").is_empty(), "the root did not log the refusal\n{}", o.logs(20));

    // A member (the Munich node, where a cluster and a worker run) at the
    // root's API over the underlay.
    let post = sla("x", &[echo_service("x", 1, serde_json::json!([]))]);
    for (method, path, body) in [("GET", "/v1/clusters", None), ("GET", "/v1/services", None), ("POST", "/v1/apps", Some(post.as_str()))] {
        let (status, answer) = o.api_from("muc", method, path, None, body);
        assert_eq!(status, 401, "{method} {path} from muc without a token: {answer}");
        let (status, answer) = o.api_from("muc", method, path, Some("guessed"), body);
        assert_eq!(status, 401, "{method} {path} from muc with a wrong token: {answer}");
    }
    assert_eq!(o.api_from("muc", "GET", "/v1/health", None, None).0, 200);
    assert_eq!(o.get("/v1/services"), serde_json::json!([]), "a refused POST deployed something");
}
