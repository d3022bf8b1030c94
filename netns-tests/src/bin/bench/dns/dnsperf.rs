//! Driving dnsperf inside a namespace and reading its output: the summary
//! (qps, average latency, losses) and, with `-v`, one line per query from
//! which the latency percentiles are computed.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use netns_tests::Netns;

/// How to load the server (the same for every server).
#[derive(Debug, Clone)]
pub struct Load<'a> {
    pub server: SocketAddr,
    pub queries: &'a Path,
    /// `-c`: client sockets.
    pub clients: u32,
    /// `-T`: threads.
    pub threads: u32,
    /// `-l`: seconds.
    pub secs: u32,
    /// `-q`: queries outstanding at most.
    pub outstanding: u32,
    /// `-Q`: queries per second at most (`None`: as fast as answered).
    pub max_qps: Option<u32>,
    /// `-v`: one line per query, for percentiles.
    pub per_query: bool,
}

/// What one dnsperf run reports.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub sent: u64,
    pub completed: u64,
    pub lost: u64,
    /// Responses whose code is not NOERROR (from the summary).
    pub not_noerror: u64,
    pub qps: f64,
    pub avg_latency_ms: f64,
    pub max_latency_ms: f64,
    /// Average response size in bytes.
    pub response_bytes: Option<f64>,
    /// Per-query latencies in ms, sorted (with `per_query`).
    pub latencies_ms: Vec<f64>,
}

impl Run {
    /// The `p`-th percentile (0–100) of the per-query latencies.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        let n = self.latencies_ms.len();
        if n == 0 {
            return None;
        }
        // Nearest rank.
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Some(self.latencies_ms[rank.clamp(1, n) - 1])
    }
}

impl Load<'_> {
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-s".to_string(),
            self.server.ip().to_string(),
            "-p".into(),
            self.server.port().to_string(),
            "-d".into(),
            self.queries.to_string_lossy().into_owned(),
            "-c".into(),
            self.clients.to_string(),
            "-T".into(),
            self.threads.to_string(),
            "-l".into(),
            self.secs.to_string(),
            "-q".into(),
            self.outstanding.to_string(),
            "-t".into(),
            "2".into(),
        ];
        if let Some(qps) = self.max_qps {
            args.extend(["-Q".into(), qps.to_string()]);
        }
        if self.per_query {
            args.push("-v".into());
        }
        args
    }
}

/// Runs dnsperf in `ns` with `load` and parses its output.
pub fn run(ns: &Netns, load: &Load<'_>) -> Result<Run> {
    let args = load.args();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ns.exec("dnsperf", &refs)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        anyhow::bail!(
            "dnsperf {} exited with {}: {}{}",
            args.join(" "),
            out.status,
            stdout.lines().rev().take(5).collect::<Vec<_>>().join(" / "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse(&stdout).with_context(|| format!("dnsperf {}", args.join(" ")))
}

/// Parses dnsperf 2.x output (summary plus optional `-v` lines).
pub fn parse(text: &str) -> Result<Run> {
    let mut run = Run::default();
    let mut seen_qps = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("> ") {
            // "> NOERROR closest.svc1.bench.default.grove A 0.000145"; "T"
            // (timed out) and "I" (interrupted) carry no latency.
            let mut fields = rest.split_whitespace();
            let code = fields.next().unwrap_or_default();
            if code == "T" || code == "I" {
                continue;
            }
            if let Some(secs) = rest.split_whitespace().last().and_then(|v| v.parse::<f64>().ok()) {
                run.latencies_ms.push(secs * 1000.0);
            }
        } else if let Some(rest) = line.strip_prefix("Queries sent:") {
            run.sent = first_number(rest)? as u64;
        } else if let Some(rest) = line.strip_prefix("Queries completed:") {
            run.completed = first_number(rest)? as u64;
        } else if let Some(rest) = line.strip_prefix("Queries lost:") {
            run.lost = first_number(rest)? as u64;
        } else if let Some(rest) = line.strip_prefix("Response codes:") {
            // "NOERROR 446302 (100.00%), NXDOMAIN 3 (0.01%)"
            for part in rest.split(',') {
                let mut f = part.split_whitespace();
                if let (Some(code), Some(count)) = (f.next(), f.next().and_then(|c| c.parse::<u64>().ok())) {
                    if code != "NOERROR" {
                        run.not_noerror += count;
                    }
                }
            }
        } else if let Some(rest) = line.strip_prefix("Queries per second:") {
            run.qps = first_number(rest)?;
            seen_qps = true;
        } else if let Some(rest) = line.strip_prefix("Average Latency (s):") {
            // "0.000880 (min 0.000018, max 0.010912)"
            run.avg_latency_ms = first_number(rest)? * 1000.0;
            if let Some(max) = rest.split("max").nth(1) {
                run.max_latency_ms = first_number(max.trim_end_matches(')'))? * 1000.0;
            }
        } else if let Some(rest) = line.strip_prefix("Average packet size:") {
            // "request 51, response 67"
            run.response_bytes = rest.split("response").nth(1).and_then(|v| first_number(v).ok());
        }
    }
    if !seen_qps {
        anyhow::bail!("no \"Queries per second\" in dnsperf's output:\n{}", tail(text, 15));
    }
    run.latencies_ms.sort_by(f64::total_cmp);
    Ok(run)
}

fn first_number(text: &str) -> Result<f64> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '(')
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse::<f64>().ok())
        .ok_or_else(|| anyhow!("no number in {text:?}"))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.153 -d q.txt -c 1 -T 1 -l 2 -v
> NOERROR closest.svc714.bench.default.grove A 0.000145
> T closest.svc1.bench.default.grove A
> NOERROR closest.svc279.bench.default.grove A 0.000099
> NXDOMAIN closest.svc2.bench.default.grove A 0.000300
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         4
  Queries completed:    3 (75.00%)
  Queries lost:         1 (25.00%)

  Response codes:       NOERROR 2 (66.67%), NXDOMAIN 1 (33.33%)
  Average packet size:  request 51, response 67
  Run time (s):         2.000126
  Queries per second:   1.500000

  Average Latency (s):  0.000181 (min 0.000099, max 0.000300)
  Latency StdDev (s):   0.000666
";

    #[test]
    fn summary_and_per_query_lines_parse() {
        let run = parse(SAMPLE).expect("parse");
        assert_eq!((run.sent, run.completed, run.lost, run.not_noerror), (4, 3, 1, 1));
        assert!((run.qps - 1.5).abs() < 1e-9);
        assert!((run.avg_latency_ms - 0.181).abs() < 1e-9);
        assert!((run.max_latency_ms - 0.3).abs() < 1e-9);
        assert_eq!(run.response_bytes, Some(67.0));
        assert_eq!(run.latencies_ms.len(), 3);
        let near = |p: f64, want: f64| run.percentile_ms(p).is_some_and(|v| (v - want).abs() < 1e-9);
        assert!(near(50.0, 0.145) && near(99.0, 0.3) && near(0.0, 0.099));
    }

    #[test]
    fn output_without_a_summary_is_an_error() {
        assert!(parse("Error: could not open file").is_err());
    }
}
