//! Turning measurements into the Markdown table, the ratios and the final
//! JSON line.

use crate::peers::SetupError;
use std::fmt::Write as _;

/// Everything measured for one data plane.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    pub tcp1_gbps: Option<f64>,
    pub tcp4_gbps: Option<f64>,
    pub udp64_pps: Option<f64>,
    /// Average ping RTT over the path.
    pub rtt_ms: Option<f64>,
    /// Resident memory of the tunnel daemon on the client side.
    pub rss_mb: Option<f64>,
}

/// One row: a data plane and what became of it.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub outcome: Outcome,
}

/// A contender (data plane, DNS server) was measured, or why not. Shared
/// by every benchmark; `M` is that benchmark's measurement.
#[derive(Debug, Clone)]
pub enum Outcome<M = Measurement> {
    Measured(M),
    /// Its software is not installed (the package to install).
    Missing(String),
    /// It was there but failed (reason).
    Failed(String),
}

impl<M> Outcome<M> {
    /// Classifies a contender's result and says on stderr why it has no
    /// figures, if so.
    pub fn decide(name: &str, result: Result<M, SetupError>) -> Outcome<M> {
        match result {
            Ok(m) => Outcome::Measured(m),
            Err(SetupError::Missing(package)) => {
                eprintln!("          {name}: not installed — install package `{package}` to include it");
                Outcome::Missing(package)
            }
            Err(SetupError::Failed(e)) => {
                eprintln!("          {name}: FAILED: {e:#}");
                Outcome::Failed(format!("{e:#}"))
            }
        }
    }
}

impl Row {
    pub fn measured(&self) -> Option<&Measurement> {
        match &self.outcome {
            Outcome::Measured(m) => Some(m),
            _ => None,
        }
    }
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// The Markdown table (RTT added relative to the `veth` row).
pub fn markdown(rows: &[Row]) -> String {
    let base_rtt = rows
        .iter()
        .find(|r| r.name == "veth")
        .and_then(Row::measured)
        .and_then(|m| m.rtt_ms);
    let mut out = String::new();
    out.push_str("| data plane | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | UDP 64 B kpps | RTT ms | RTT added µs | daemon RSS MB | note |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---|\n");
    for row in rows {
        let line = match &row.outcome {
            Outcome::Measured(m) => {
                let added = match (m.rtt_ms, base_rtt) {
                    (Some(r), Some(b)) => Some((r - b) * 1000.0),
                    _ => None,
                };
                format!(
                    "| {} | {} | {} | {} | {} | {} | {} | |",
                    row.name,
                    cell(m.tcp1_gbps, 2),
                    cell(m.tcp4_gbps, 2),
                    cell(m.udp64_pps.map(|p| p / 1000.0), 1),
                    cell(m.rtt_ms, 3),
                    cell(added, 0),
                    cell(m.rss_mb, 1),
                )
            }
            Outcome::Missing(package) => format!("| {} | – | – | – | – | – | – | not installed (`apt-get install {package}`) |", row.name),
            Outcome::Failed(reason) => format!("| {} | – | – | – | – | – | – | failed: {} |", row.name, one_line(reason)),
        };
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Ratio lines: grove / best of (wireguard-go, nebula) and grove / veth.
pub fn ratios(rows: &[Row]) -> String {
    let tcp1 = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(Row::measured)
            .and_then(|m| m.tcp1_gbps)
    };
    let grove = tcp1("grove");
    let best_peer = [tcp1("wireguard-go"), tcp1("nebula")].into_iter().flatten().reduce(f64::max);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    };
    format!(
        "grove / best-of(wireguard-go, nebula), single-stream TCP: {}\ngrove / raw veth, single-stream TCP: {}\n",
        ratio(grove, best_peer),
        ratio(grove, tcp1("veth"))
    )
}

/// The final machine-readable line.
pub fn json(rows: &[Row]) -> String {
    let get = |name: &str, f: fn(&Measurement) -> Option<f64>| {
        rows.iter().find(|r| r.name == name).and_then(Row::measured).and_then(f)
    };
    // Written by hand to keep the documented key order.
    let num = |v: Option<f64>| v.map_or_else(|| "null".to_string(), |v| format!("{:.3}", v));
    format!(
        "{{\"bench\":\"overlay\",\"grove_gbps\":{},\"wireguard_go_gbps\":{},\"nebula_gbps\":{},\"veth_gbps\":{},\"grove_rss_mb\":{}}}",
        num(get("grove", |m| m.tcp1_gbps)),
        num(get("wireguard-go", |m| m.tcp1_gbps)),
        num(get("nebula", |m| m.tcp1_gbps)),
        num(get("veth", |m| m.tcp1_gbps)),
        num(get("grove", |m| m.rss_mb)),
    )
}

fn one_line(s: &str) -> String {
    let s = s.replace(['\n', '|'], " ");
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}
