//! Prometheus metrics: `GET /metrics` on `metrics_listen`, in the text
//! exposition format 0.0.4.
//!
//! Written by hand rather than with a client library: the format is a few
//! line shapes, and the daemon already holds every number in its own
//! structures ([`overlay::DeviceStatus`], [`dns::QueryStats`], membership),
//! so a scrape builds a [`MetricsInputs`] from them and [`render`]s it; no
//! second set of counters to keep in step. Every family's HELP and TYPE are
//! written even when it has no samples yet, so dashboards see the names.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Scrapers are few; more connections than this are refused (closed at once).
const MAX_CONNECTIONS: usize = 64;

/// Everything one scrape reports, gathered by the caller.
pub struct MetricsInputs {
    /// The data plane: per-peer traffic, handshakes, drops; device-wide drops.
    pub device: overlay::DeviceStatus,
    /// Non-zero DNS query counts ([`dns::QueryStats::snapshot`]).
    pub dns: Vec<dns::QueryCount>,
    /// DNS responses truncated to fit UDP ([`dns::QueryStats::truncated`]).
    pub dns_truncated: u64,
    /// DNS answers that served an unhealthy instance ([`dns::QueryStats::unhealthy_served`]).
    pub dns_unhealthy_served: u64,
    /// Queries refused at the front door: from outside `allow_from`, over
    /// the per-client rate, or with the forwarder full.
    pub dns_refused: DnsRefusals,
    /// Connections that are not (yet) members'.
    pub strangers: u64,
    /// Instance keys announced by more than one member.
    pub instance_conflicts: u64,
    /// Every known member but this node.
    pub members: Vec<MemberMetrics>,
    /// Joins, leaves, suspicions and deaths seen since start.
    pub membership_changes: u64,
    /// This node's Vivaldi error estimate.
    pub local_coordinate_error: f64,
    /// Instances in this node's directory.
    pub instances_served: u64,
}

/// Queries the DNS front door turned away, by why.
#[derive(Clone, Copy, Debug, Default)]
pub struct DnsRefusals {
    pub not_allowed: u64,
    pub rate_limited: u64,
    pub forward_busy: u64,
}

/// One member as membership and the coordinate system see it.
pub struct MemberMetrics {
    /// Its node name: the `member` label.
    pub name: String,
    /// Its control-plane (libp2p) peer id.
    pub peer_id: String,
    /// Its overlay (WireGuard) public key as [`overlay::PeerStatus::public_key`]
    /// spells it: the device's peer with this key is labelled with `name`.
    pub overlay_key: Option<String>,
    /// `alive`, `suspect`, `dead` or `left`.
    pub state: &'static str,
    /// The RTT the directory uses for it.
    pub rtt_seconds: Option<f64>,
    /// `rtt_seconds` was measured (else it is an estimate).
    pub rtt_measured: bool,
    /// The Vivaldi estimate.
    pub estimated_rtt_seconds: Option<f64>,
    /// |estimate − measured| / measured, where both exist.
    pub estimate_error_ratio: Option<f64>,
}

/// Everything a scrape reports, read fresh from the running node.
pub fn inputs(state: &crate::api::ApiState) -> MetricsInputs {
    let view = match &state.mode {
        crate::api::Mode::Dynamic(d) => d.control.view(),
        crate::api::Mode::Static => None,
    };
    let members = view
        .iter()
        .flat_map(|v| &v.members)
        .map(|m| MemberMetrics {
            name: m.name.clone(),
            peer_id: m.peer_id.to_string(),
            overlay_key: Some(m.wg_public_key.to_string()),
            state: m.state.as_str(),
            rtt_seconds: m.rtt_ms().map(|(ms, _)| ms / 1000.0),
            rtt_measured: m.measured_ms.is_some(),
            estimated_rtt_seconds: m.estimated_ms.map(|ms| ms / 1000.0),
            estimate_error_ratio: match (m.measured_ms, m.estimated_ms) {
                (Some(measured), Some(estimated)) if measured > 0.0 => Some((estimated - measured).abs() / measured),
                _ => None,
            },
        })
        .collect();
    let snapshot = state.directory.snapshot();
    let instances_served = snapshot.service_names().map(|s| dns::Directory::service(&*snapshot, s).len() as u64).sum();
    let stats = &state.dns_stats;
    MetricsInputs {
        device: state.device.status(),
        dns: stats.snapshot(),
        dns_truncated: stats.truncated(),
        dns_unhealthy_served: stats.unhealthy_served(),
        dns_refused: DnsRefusals { not_allowed: stats.not_allowed(), rate_limited: stats.rate_limited(), forward_busy: stats.forward_busy() },
        strangers: view.as_ref().map_or(0, |v| v.strangers as u64),
        instance_conflicts: view.as_ref().map_or(0, |v| v.conflicts.len() as u64),
        members,
        membership_changes: view.as_ref().map_or(0, |v| v.changes),
        local_coordinate_error: view.as_ref().map_or(0.0, |v| v.local.coordinate_error),
        instances_served,
    }
}

/// Why metrics could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot serve metrics on {address}: {reason} ({source}); change `metrics_listen` in the config{hint}")]
    Bind {
        address: SocketAddr,
        reason: &'static str,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
}

const MEMBER_STATES: [&str; 4] = ["alive", "suspect", "dead", "left"];

/// The metrics of `inputs` in the text exposition format.
pub fn render(inputs: &MetricsInputs) -> String {
    let mut w = Exposition::default();
    let names: HashMap<&str, &str> =
        inputs.members.iter().filter_map(|m| Some((m.overlay_key.as_deref()?, m.name.as_str()))).collect();
    let peers: Vec<(&str, &overlay::PeerStatus)> = (inputs.device.peers.iter())
        .map(|p| (names.get(p.public_key.as_str()).copied().unwrap_or(&p.public_key), p))
        .collect();
    w.family("grove_peer_rx_bytes_total", "Inner bytes received from the peer.");
    peers.iter().for_each(|(peer, p)| w.sample(&[("peer", peer)], p.rx_bytes));
    w.family("grove_peer_tx_bytes_total", "Inner bytes sent to the peer.");
    peers.iter().for_each(|(peer, p)| w.sample(&[("peer", peer)], p.tx_bytes));
    w.family("grove_peer_rx_packets_total", "Inner packets received from the peer.");
    peers.iter().for_each(|(peer, p)| w.sample(&[("peer", peer)], p.rx_packets));
    w.family("grove_peer_tx_packets_total", "Inner packets sent to the peer.");
    peers.iter().for_each(|(peer, p)| w.sample(&[("peer", peer)], p.tx_packets));
    w.family("grove_peer_last_handshake_age_seconds", "Time since the last completed handshake with the peer.");
    peers.iter().for_each(|(peer, p)| w.some(&[("peer", peer)], p.last_handshake_secs.map(Float)));
    w.family("grove_peer_handshake_rtt_seconds", "Round trip of the last handshake this node initiated.");
    let rtt = |p: &overlay::PeerStatus| p.handshake_rtt_ms.map(|ms| Float(f64::from(ms) / 1000.0));
    peers.iter().for_each(|(peer, p)| w.some(&[("peer", peer)], rtt(p)));
    w.family("grove_peer_drops_total", "Packets of the peer discarded, by reason.");
    for (peer, p) in &peers {
        p.drops.iter().for_each(|(reason, n)| w.sample(&[("peer", peer), ("reason", reason)], *n));
    }
    // Apart from the per-peer family, so that summing both counts no drop twice.
    w.family("grove_drops_total", "Packets discarded that no known peer accounts for, by reason.");
    (inputs.device.drops.iter()).for_each(|(reason, n)| w.sample(&[("reason", reason)], *n));

    w.family("grove_dns_queries_total", "DNS queries answered, by kind of name and response code.");
    (inputs.dns.iter()).for_each(|q| w.sample(&[("kind", q.kind), ("rcode", q.rcode)], q.count));
    w.family("grove_dns_truncated_total", "DNS responses truncated to fit UDP (TC set).");
    w.sample(&[], inputs.dns_truncated);
    w.family("grove_dns_unhealthy_answers_total", "DNS answers that served an unhealthy instance.");
    w.sample(&[], inputs.dns_unhealthy_served);
    w.family("grove_dns_refused_total", "DNS queries turned away at the front door, by reason.");
    let refused = inputs.dns_refused;
    for (reason, n) in [("not_allowed", refused.not_allowed), ("rate_limited", refused.rate_limited), ("forward_busy", refused.forward_busy)] {
        w.sample(&[("reason", reason)], n);
    }
    w.family("grove_instances", "Instances in this node's directory.");
    w.sample(&[], inputs.instances_served);
    w.family("grove_instance_conflicts", "Instance keys announced by more than one member (the lower peer id serves).");
    w.sample(&[], inputs.instance_conflicts);
    w.family("grove_control_strangers", "Control-plane connections not (yet) shown to be a member's.");
    w.sample(&[], inputs.strangers);

    w.family("grove_membership_changes_total", "Membership changes seen: joins, leaves, suspicions, deaths.");
    w.sample(&[], inputs.membership_changes);
    // Every state gets a sample (1 for the current one), so that a change
    // moves values of existing series instead of making one vanish.
    w.family("grove_member_state", "1 for the member's current state (alive, suspect, dead, left), else 0.");
    for m in &inputs.members {
        for state in MEMBER_STATES {
            w.sample(&[("member", &m.name), ("state", state)], u64::from(m.state == state));
        }
    }
    w.family("grove_member_rtt_seconds", "Round trip to the member: measured, or the coordinate estimate.");
    for m in &inputs.members {
        let measured = m.rtt_seconds.filter(|_| m.rtt_measured);
        // Without a separate estimate, an RTT that was not measured is one.
        let estimated = m.estimated_rtt_seconds.or(m.rtt_seconds.filter(|_| !m.rtt_measured));
        w.some(&[("member", &m.name), ("source", "measured")], measured.map(Float));
        w.some(&[("member", &m.name), ("source", "estimated")], estimated.map(Float));
    }
    w.family("grove_member_rtt_estimate_error_ratio", "|estimated - measured| / measured RTT to the member.");
    (inputs.members.iter()).for_each(|m| w.some(&[("member", &m.name)], m.estimate_error_ratio.map(Float)));
    w.family("grove_coordinate_error", "This node's Vivaldi coordinate error estimate (relative).");
    w.sample(&[], Float(inputs.local_coordinate_error));
    w.out
}

/// The text being written, and the family samples now belong to.
#[derive(Default)]
struct Exposition {
    out: String,
    family: &'static str,
}

/// A float as the format spells it (`NaN`, `+Inf`, `-Inf`). Counters are
/// written as u64, exact beyond 2^53 (byte counters of busy links get there).
struct Float(f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            v if v.is_nan() => f.write_str("NaN"),
            v if v.is_infinite() => f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" }),
            v => write!(f, "{v}"),
        }
    }
}

impl Exposition {
    /// Starts a family; by the naming convention, `_total` names are counters.
    fn family(&mut self, name: &'static str, help: &str) {
        self.family = name;
        let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let out = &mut self.out;
        out.push_str(self.family);
        for (i, (label, text)) in labels.iter().enumerate() {
            out.push(if i == 0 { '{' } else { ',' });
            let _ = write!(out, "{label}=\"");
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        if !labels.is_empty() {
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }

    /// A sample when there is a value (no sample says "unknown", unlike 0).
    fn some(&mut self, labels: &[(&str, &str)], value: Option<impl std::fmt::Display>) {
        if let Some(value) = value {
            self.sample(labels, value);
        }
    }
}

/// Binds the metrics listener, saying what to change when it cannot.
pub async fn bind(listen: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(listen).await.map_err(|source| {
        use std::io::ErrorKind::*;
        let (reason, hint) = match source.kind() {
            AddrInUse => ("address in use", " to a free port (is another netmanager or exporter there?)"),
            PermissionDenied if listen.port() < 1024 => ("privileged port", " to a port >= 1024"),
            AddrNotAvailable => ("not an address of this host", " to one of this host's addresses"),
            _ => ("bind failed", ""),
        };
        MetricsError::Bind { address: listen, reason, hint, source }
    })
}

/// Serves `GET /metrics` (anything else: 404, or 405 for another method on
/// /metrics) until this future is dropped, which also drops every open
/// connection. `inputs` is called once per scrape.
pub async fn serve(listener: TcpListener, inputs: Arc<dyn Fn() -> MetricsInputs + Send + Sync>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => stream,
            Ok(_) => continue, // dropped: closes it
            Err(error) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::debug!(%error, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let inputs = inputs.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let inputs = inputs.clone();
                async move { Ok::<_, Infallible>(respond(&request, &*inputs)) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new()) // enables hyper's 30 s header timeout (slowloris)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "metrics connection failed");
            }
        });
    }
}

fn respond<B>(request: &Request<B>, inputs: &(dyn Fn() -> MetricsInputs + Send + Sync)) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE, render(&inputs())),
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "metrics are at /metrics\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn inputs(member_name: &str) -> MetricsInputs {
        let peer = |key: &str, rx: u64, drops| {
            json!({"public_key": key, "allowed_ips": [], "last_handshake_secs": 12.5, "drops": drops,
                "rx_bytes": rx, "rx_packets": 2, "tx_bytes": 30, "tx_packets": 1})
        };
        let device = json!({"interface": "grove0", "public_key": "SELF", "listen_port": 51820, "mtu": 1420,
            "addresses": [], "offload": false, "drops": {"unknown_key": 4},
            "peers": [peer("K1", 100, json!({"replay": 3})), peer("K2", 7, json!({}))]});
        MetricsInputs {
            device: serde_json::from_value(device).expect("a DeviceStatus"),
            dns: vec![dns::QueryCount { kind: "closest", rcode: "NOERROR", count: 9 }],
            dns_truncated: 1,
            dns_unhealthy_served: 0,
            dns_refused: DnsRefusals { not_allowed: 2, rate_limited: 0, forward_busy: 0 },
            strangers: 0,
            instance_conflicts: 0,
            members: vec![MemberMetrics {
                name: member_name.into(),
                peer_id: "12D3KooW".into(),
                overlay_key: Some("K1".into()),
                state: "suspect",
                rtt_seconds: Some(0.002),
                rtt_measured: true,
                estimated_rtt_seconds: Some(0.0025),
                estimate_error_ratio: Some(0.25),
            }],
            membership_changes: 5,
            local_coordinate_error: f64::NAN,
            instances_served: 3,
        }
    }

    #[test]
    fn samples_of_a_small_input() {
        let text = render(&inputs("n1"));
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let expected = r#"grove_peer_rx_bytes_total{peer="n1"} 100
grove_peer_rx_bytes_total{peer="K2"} 7
grove_peer_tx_bytes_total{peer="n1"} 30
grove_peer_tx_bytes_total{peer="K2"} 30
grove_peer_rx_packets_total{peer="n1"} 2
grove_peer_rx_packets_total{peer="K2"} 2
grove_peer_tx_packets_total{peer="n1"} 1
grove_peer_tx_packets_total{peer="K2"} 1
grove_peer_last_handshake_age_seconds{peer="n1"} 12.5
grove_peer_last_handshake_age_seconds{peer="K2"} 12.5
grove_peer_drops_total{peer="n1",reason="replay"} 3
grove_drops_total{reason="unknown_key"} 4
grove_dns_queries_total{kind="closest",rcode="NOERROR"} 9
grove_dns_truncated_total 1
grove_dns_unhealthy_answers_total 0
grove_dns_refused_total{reason="not_allowed"} 2
grove_dns_refused_total{reason="rate_limited"} 0
grove_dns_refused_total{reason="forward_busy"} 0
grove_instances 3
grove_instance_conflicts 0
grove_control_strangers 0
grove_membership_changes_total 5
grove_member_state{member="n1",state="alive"} 0
grove_member_state{member="n1",state="suspect"} 1
grove_member_state{member="n1",state="dead"} 0
grove_member_state{member="n1",state="left"} 0
grove_member_rtt_seconds{member="n1",source="measured"} 0.002
grove_member_rtt_seconds{member="n1",source="estimated"} 0.0025
grove_member_rtt_estimate_error_ratio{member="n1"} 0.25
grove_coordinate_error NaN"#;
        assert_eq!(samples, expected.lines().collect::<Vec<_>>());
        assert!(text.contains("# TYPE grove_peer_rx_bytes_total counter\n"));
        assert!(text.contains("# TYPE grove_instances gauge\n"));
    }

    #[test]
    fn every_family_has_help_and_type_once_before_its_samples() {
        let text = render(&inputs("n1"));
        let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut current = "";
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            match words[..] {
                ["#", "HELP", name, ..] => seen.entry(name).or_default().0 += 1,
                ["#", "TYPE", name, "counter" | "gauge"] => {
                    seen.entry(name).or_default().1 += 1;
                    current = name;
                    assert_eq!(name.ends_with("_total"), words[3] == "counter", "{line}");
                }
                _ => assert_eq!(line.split(['{', ' ']).next(), Some(current), "{line} outside its family"),
            }
        }
        assert!(seen.len() == 20 && seen.values().all(|&c| c == (1, 1)), "{seen:?}");
    }

    #[test]
    fn label_values_are_escaped() {
        let text = render(&inputs("a\"b\\c\nd"));
        assert!(text.contains(r#"grove_member_rtt_estimate_error_ratio{member="a\"b\\c\nd"} 0.25"#), "{text}");
        assert!(text.contains(r#"grove_peer_rx_bytes_total{peer="a\"b\\c\nd"} 100"#));
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: grove\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response));
        read.await.expect("in time").expect("read");
        response
    }

    #[tokio::test]
    async fn serves_metrics_over_http_and_404_elsewhere() {
        let listener = bind("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve(listener, Arc::new(|| inputs("n1"))));
        let response = get(addr, "/metrics").await;
        let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
        assert_eq!(body, render(&inputs("n1")));
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 404 "));
        assert!(get(addr, "/metrics/x").await.starts_with("HTTP/1.1 404 "));
        server.abort();
    }

    #[tokio::test]
    async fn bind_errors_say_where_and_what_to_change() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("addr");
        let error = bind(addr).await.expect_err("taken").to_string();
        assert!(error.contains(&addr.to_string()) && error.contains("address in use"), "{error}");
        assert!(error.contains("`metrics_listen`"), "{error}");
    }
}
