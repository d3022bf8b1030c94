//! The dynamic control plane end to end: nodes join with a token, learn
//! each other from signed records, and every resolver answers `closest`
//! from live data; failures and restarts move the answers.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use netns_tests::dynamic::{ask, time_until, DynamicMesh};
use netns_tests::inns::in_netns;
use netns_tests::{ScratchDir, Signal, Site, Testbed};

use super::support::build;

fn munich() -> Site {
    Site::new("munich", 48.14, 11.58)
}
fn frankfurt() -> Site {
    Site::new("frankfurt", 50.11, 8.68)
}
fn helsinki() -> Site {
    Site::new("helsinki", 60.17, 24.94)
}

/// 8 nodes in 3 sites; node 0 is the authority.
fn eight_nodes() -> Testbed {
    build(
        Testbed::builder()
            .with_node_at("muc0", munich())
            .with_node_at("muc1", munich())
            .with_node_at("muc2", munich())
            .with_node_at("fra0", frankfurt())
            .with_node_at("fra1", frankfurt())
            .with_node_at("fra2", frankfurt())
            .with_node_at("hel0", helsinki())
            .with_node_at("hel1", helsinki()),
    )
}

/// A workload of `ms2` on `node`; returns (netns, address).
fn deploy(mesh: &DynamicMesh, node: &str, number: u32) -> (String, Ipv4Addr) {
    deploy_service(mesh, node, "ms2", number)
}

fn deploy_service(mesh: &DynamicMesh, node: &str, service: &str, number: u32) -> (String, Ipv4Addr) {
    let n = mesh.node(node).expect("node");
    let body = format!(r#"{{"service":"{service}","app":"cam","number":{number},"ports":[{{"name":"http","protocol":"tcp","port":8080}}]}}"#);
    let (code, created) = n.api("POST", "/v1/workloads", Some(&body)).expect("POST /v1/workloads");
    assert_eq!(code, 201, "workload on {node}: {created}\n{}", mesh.logs(20));
    let netns = created["workload"]["netns"].as_str().expect("netns").to_owned();
    let address = created["workload"]["address"].as_str().expect("address").parse().expect("ipv4");
    (netns, address)
}

/// Bytes each workload server sends after its tag: enough full-size
/// segments to show the path MTU through bridge and tunnel is right.
const BULK: usize = 1 << 20;

/// A TCP server inside a workload namespace that answers with `tag` and
/// [`BULK`] bytes.
fn serve_tag(netns: &str, address: Ipv4Addr, tag: &'static str) {
    let listener = in_netns(netns, move || TcpListener::bind(SocketAddr::new(address.into(), 8080)))
        .expect("enter workload netns")
        .expect("bind in workload");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(tag.as_bytes());
            let _ = stream.write_all(&vec![7u8; BULK]);
        }
    });
}

fn closest(mesh: &DynamicMesh, sockets: &[std::net::UdpSocket], i: usize) -> Vec<Ipv4Addr> {
    let _ = mesh;
    ask(&sockets[i], "closest.ms2.grove").map(|a| a.addresses).unwrap_or_default()
}

#[test]
fn dynamic_mesh_joins_by_token_and_closest_follows_failures() {
    let tb = eight_nodes();
    let dir = ScratchDir::new("dyn8").expect("scratch");
    let mut mesh = DynamicMesh::prepare(&tb, dir.path()).expect("prepare");
    mesh.start_all().unwrap_or_else(|e| panic!("start: {e}\n{}", mesh.logs(20)));
    mesh.wait_converged(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));

    let (muc_ns, muc_ip) = deploy(&mesh, "muc2", 1);
    let (fra_ns, fra_ip) = deploy(&mesh, "fra1", 2);
    let (hel_ns, hel_ip) = deploy(&mesh, "hel0", 3);
    serve_tag(&muc_ns, muc_ip, "muc2");
    serve_tag(&fra_ns, fra_ip, "fra1");
    serve_tag(&hel_ns, hel_ip, "hel0");

    // Every node's resolver names the instance at its own site.
    let sockets: Vec<_> = mesh.nodes.iter().map(|n| n.resolver().expect("resolver socket")).collect();
    let expected = |name: &str| match &name[..3] {
        "muc" => muc_ip,
        "fra" => fra_ip,
        _ => hel_ip,
    };
    for (i, node) in mesh.nodes.iter().enumerate() {
        let want = expected(&node.name);
        let took = time_until(Duration::from_secs(20), || closest(&mesh, &sockets, i) == vec![want]);
        assert!(
            took.is_some(),
            "{} answers {:?}, want {want}\n{}",
            node.name,
            closest(&mesh, &sockets, i),
            node.status_text().unwrap_or_default()
        );
    }

    // From inside a workload namespace, through the system resolver and the
    // search domain: the short name, then TCP across the mesh.
    let (client_ns, _) = deploy_service(&mesh, "muc0", "camera", 1);
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &client_ns, "getent", "ahostsv4", "closest.ms2"])
        .output()
        .expect("getent");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&muc_ip.to_string()), "getent closest.ms2 in a workload: {text:?} {:?}", out.stderr);
    let tag = in_netns(&client_ns, move || -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&SocketAddr::new(fra_ip.into(), 8080), Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut all = Vec::new();
        s.read_to_end(&mut all)?;
        Ok(all)
    })
    .expect("enter client netns")
    .expect("TCP from a muc0 workload to fra1's instance through the mesh");
    assert_eq!(&tag[..4], b"fra1");
    assert_eq!(tag.len(), 4 + BULK, "the whole transfer crossed bridge, tunnel and bridge");

    // hel0 dies: no resolver may name its instance 2 s later.
    let hel1 = mesh.index("hel1").expect("hel1");
    let hel0 = mesh.index("hel0").expect("hel0");
    mesh.nodes[hel0].stop_with(Signal::Kill).expect("kill hel0");
    let gone = time_until(Duration::from_secs(10), || {
        (0..mesh.nodes.len()).filter(|i| *i != hel0).all(|i| !closest(&mesh, &sockets, i).contains(&hel_ip))
    });
    let gone = gone.unwrap_or_else(|| panic!("hel0's instance still answered\n{}", mesh.logs(20)));
    assert!(gone < Duration::from_secs(2), "hel0's instance left the answers after {gone:?} (target 2 s)");
    let now = closest(&mesh, &sockets, hel1);
    assert!(now == vec![fra_ip] || now == vec![muc_ip], "hel1 now answers {now:?}");

    // hel0 comes back (same identity, kept grant); its new instance is
    // preferred by hel1 again.
    mesh.nodes[hel0].start().expect("restart hel0");
    mesh.wait_converged(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}\n{}", mesh.logs(20)));
    let (_hel_ns2, hel_ip2) = deploy(&mesh, "hel0", 3);
    let back = time_until(Duration::from_secs(10), || closest(&mesh, &sockets, hel1) == vec![hel_ip2]);
    assert!(back.is_some(), "hel1 answers {:?} after hel0 returned", closest(&mesh, &sockets, hel1));
}
