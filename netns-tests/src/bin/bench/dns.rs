//! `bench dns`: grove's semantic DNS (`closest.<service>` over 1,000
//! services × 10 instances, ranked per query) against Knot DNS serving the
//! same answers from a static zone. Each server runs alone in its own
//! namespace; dnsperf loads it from inside that namespace over loopback with
//! the same parameters. Reported: queries per second at saturation, latency
//! percentiles at fixed rates, server CPU time per query, resident memory
//! and how fast the server's log grows.

mod data;
mod dnsperf;
mod servers;
mod stop;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::cpu::{clock_ticks_per_sec, cpu_ticks};

use crate::peers::{require_program, SetupError};
use crate::report::Outcome;
use dnsperf::Load;
use servers::{Server, LISTEN};

/// Options of `bench dns`.
#[derive(Debug, clap::Args)]
pub struct DnsArgs {
    /// Services registered (10 instances each).
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Seconds of the throughput run (dnsperf as fast as answered).
    #[arg(long, default_value_t = 10)]
    secs: u32,
    /// Queries dnsperf keeps outstanding (`-q`).
    #[arg(long, default_value_t = 100)]
    outstanding: u32,
    /// dnsperf client sockets (`-c`), the same for every server.
    #[arg(long, default_value_t = 1)]
    clients: u32,
    /// dnsperf threads (`-T`), the same for every server.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Offered rates of the latency runs (`-Q`), queries per second.
    #[arg(long, value_delimiter = ',', default_value = "2000,20000")]
    latency_qps: Vec<u32>,
    /// Seconds of each latency run.
    #[arg(long, default_value_t = 5)]
    latency_secs: u32,
    /// Only these servers (grove, knot); both by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Keep each server up this many seconds after its measurement (its
    /// pid, namespace and a dnsperf command line are printed), for
    /// `perf record -p` or dnsperf by hand.
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
}

/// `grove` runs netmanager as shipped (default log filter).
const SERVERS: [&str; 2] = ["grove", "knot"];

/// Latency percentiles at one offered rate.
#[derive(Debug, Clone, Default)]
struct Latency {
    offered_qps: u32,
    answered_qps: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
}

/// Everything measured for one server.
#[derive(Debug, Clone, Default)]
struct Measurement {
    qps: f64,
    /// dnsperf's average at saturation (mostly its own queue: `-q` / qps).
    avg_saturated_ms: f64,
    lost: u64,
    latencies: Vec<Latency>,
    /// Server CPU time (user + system, all threads) per answered query
    /// during the throughput run.
    cpu_us_per_query: Option<f64>,
    /// Cores the server used during the throughput run.
    cpu_cores: Option<f64>,
    rss_mb: Option<f64>,
    response_bytes: Option<f64>,
    /// Growth of the server's log per answered query in the throughput run.
    log_bytes_per_query: Option<f64>,
}

struct Row {
    name: &'static str,
    outcome: Outcome<Measurement>,
}

impl Row {
    fn measured(&self) -> Option<&Measurement> {
        match &self.outcome {
            Outcome::Measured(m) => Some(m),
            _ => None,
        }
    }
}

/// Runs the benchmark and prints table, ratios and the JSON line.
pub fn run(args: &DnsArgs) -> Result<()> {
    stop::install()?;
    let started = Instant::now();
    let services = data::services(args.services);
    let queries_text = data::query_file(&services);
    let expected: HashMap<String, Ipv4Addr> = services.iter().map(|s| (s.qname(), s.expected)).collect();
    let tools = require_program("dnsperf", "dnsperf").and_then(|()| require_program("dig", "dnsutils"));
    let mut rows = Vec::new();
    for name in SERVERS {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        stop::check()?;
        let progress = |what: &str| eprintln!("[{:>5.1}s] {name}: {what}", started.elapsed().as_secs_f64());
        progress("setting up");
        let result = match &tools {
            Err(SetupError::Missing(package)) => Err(SetupError::Missing(package.clone())),
            Err(SetupError::Failed(e)) => Err(SetupError::Failed(anyhow!("{e:#}"))),
            Ok(()) => bench_server(name, args, &services, &queries_text, &expected, &progress),
        };
        rows.push(Row {
            name,
            outcome: Outcome::decide(name, result),
        });
    }
    eprintln!("[{:>5.1}s] done", started.elapsed().as_secs_f64());
    println!("{}", markdown(&rows, args));
    println!("{}", ratios(&rows));
    println!("{}", json(&rows));
    Ok(())
}

fn bench_server(
    name: &str,
    args: &DnsArgs,
    services: &[data::Service],
    queries_text: &str,
    expected: &HashMap<String, Ipv4Addr>,
    progress: &dyn Fn(&str),
) -> Result<Measurement, SetupError> {
    let mut server = match name {
        "grove" => servers::grove(services, None)?,
        "knot" => servers::knot(services)?,
        other => return Err(SetupError::Failed(anyhow!("unknown server {other}"))),
    };
    let measured = measure(&mut server, args, queries_text, expected, progress);
    if args.hold_secs > 0 {
        progress(&format!(
            "holding {} s: pid {}, `ip netns exec {} dnsperf -s {} -p {} -d {}`",
            args.hold_secs,
            server.pid,
            server.ns.name(),
            LISTEN.ip(),
            LISTEN.port(),
            server.dir.join("queries.txt").display()
        ));
        // An interrupted hold just ends early; the caller checks the flag next.
        let _ = stop::sleep(Duration::from_secs(args.hold_secs));
    }
    measured.map_err(|e| SetupError::Failed(anyhow!("{e:#}\n{}", server.log_tail())))
}

fn measure(
    server: &mut Server,
    args: &DnsArgs,
    queries_text: &str,
    expected: &HashMap<String, Ipv4Addr>,
    progress: &dyn Fn(&str),
) -> Result<Measurement> {
    let queries = server.dir.join("queries.txt");
    std::fs::write(&queries, queries_text).with_context(|| format!("write {}", queries.display()))?;

    progress(&format!("checking all {} answers with dig", expected.len()));
    check_answers(server, &queries, expected)?;

    let load = Load {
        server: LISTEN,
        queries: &queries,
        clients: args.clients,
        threads: args.threads,
        secs: 2,
        outstanding: args.outstanding,
        max_qps: None,
        per_query: false,
    };
    stop::check()?;
    progress("warm-up, 2 s");
    let warm = dnsperf::run(&server.ns, &load)?;
    check_clean(&warm, "warm-up")?;

    stop::check()?;
    progress(&format!(
        "  {:.0} qps; throughput, {} s (-c {} -T {} -q {})",
        warm.qps, args.secs, args.clients, args.threads, args.outstanding
    ));
    let log_before = file_len(&server.log_path());
    let cpu_before = cpu_ticks(server.pid)?;
    let wall = Instant::now();
    let throughput = dnsperf::run(
        &server.ns,
        &Load {
            secs: args.secs,
            ..load.clone()
        },
    )?;
    let wall = wall.elapsed().as_secs_f64();
    let cpu_secs = (cpu_ticks(server.pid)? - cpu_before) as f64 / clock_ticks_per_sec();
    let log_growth = file_len(&server.log_path()).saturating_sub(log_before);
    server.ensure_running()?;
    check_clean(&throughput, "throughput run")?;
    let per_query = |total: f64| (throughput.completed > 0).then(|| total / throughput.completed as f64);
    let cpu_us_per_query = per_query(cpu_secs * 1e6);
    let log_bytes_per_query = per_query(log_growth as f64);
    progress(&format!(
        "  {:.0} qps, avg {:.3} ms, server CPU {} µs/query ({:.2} cores), log +{:.1} MB",
        throughput.qps,
        throughput.avg_latency_ms,
        cell(cpu_us_per_query, 2),
        cpu_secs / wall,
        log_growth as f64 / 1e6
    ));

    let mut latencies = Vec::new();
    let mut lost = throughput.lost;
    for &rate in &args.latency_qps {
        stop::check()?;
        progress(&format!("latency at {rate} qps, {} s", args.latency_secs));
        let run = dnsperf::run(
            &server.ns,
            &Load {
                secs: args.latency_secs,
                max_qps: Some(rate),
                per_query: true,
                ..load.clone()
            },
        )?;
        server.ensure_running()?;
        check_clean(&run, &format!("latency run at {rate} qps"))?;
        lost += run.lost;
        if run.qps < f64::from(rate) * 0.95 {
            progress(&format!(
                "  warning: only {:.0} of {rate} qps offered were answered: the percentiles include queueing",
                run.qps
            ));
        }
        let l = Latency {
            offered_qps: rate,
            answered_qps: run.qps,
            p50_ms: run.percentile_ms(50.0),
            p99_ms: run.percentile_ms(99.0),
            p999_ms: run.percentile_ms(99.9),
        };
        progress(&format!(
            "  p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms ({} answers)",
            cell(l.p50_ms, 3),
            cell(l.p99_ms, 3),
            cell(l.p999_ms, 3),
            cell(run.latencies_ms.last().copied(), 3),
            run.latencies_ms.len()
        ));
        latencies.push(l);
    }
    let rss_mb = vm_rss_mb(server.pid).ok();
    progress(&format!("  RSS {} MB", cell(rss_mb, 1)));
    Ok(Measurement {
        qps: throughput.qps,
        avg_saturated_ms: throughput.avg_latency_ms,
        lost,
        latencies,
        cpu_us_per_query,
        cpu_cores: Some(cpu_secs / wall),
        rss_mb,
        response_bytes: throughput.response_bytes,
        log_bytes_per_query,
    })
}

/// Every query of the file through `dig -f`: each must come back with
/// exactly the expected address.
fn check_answers(server: &Server, queries: &Path, expected: &HashMap<String, Ipv4Addr>) -> Result<()> {
    let out = server.ns.exec(
        "dig",
        &[
            &format!("@{}", LISTEN.ip()),
            "-p",
            &LISTEN.port().to_string(),
            "+noall",
            "+answer",
            "+tries=3",
            "+time=2",
            "-f",
            &queries.to_string_lossy(),
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut got: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
    for line in text.lines() {
        // "closest.svc7.bench.default.grove. 2 IN A 10.103.0.7"
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [name, _ttl, "IN", "A", ip] = f[..] {
            let ip: Ipv4Addr = ip.parse().with_context(|| format!("dig answer {line:?}"))?;
            got.entry(name.trim_end_matches('.').to_ascii_lowercase())
                .or_default()
                .push(ip);
        }
    }
    let mut wrong = Vec::new();
    for (name, want) in expected {
        match got.get(name) {
            Some(ips) if ips == &[*want] => {}
            other => wrong.push(format!("{name}: want {want}, got {other:?}")),
        }
    }
    if !wrong.is_empty() {
        wrong.sort();
        anyhow::bail!(
            "{} of {} answers wrong, e.g.\n  {}\n(dig exit {}, stderr: {})",
            wrong.len(),
            expected.len(),
            wrong.iter().take(5).cloned().collect::<Vec<_>>().join("\n  "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A run must have answered everything with NOERROR.
fn check_clean(run: &dnsperf::Run, what: &str) -> Result<()> {
    anyhow::ensure!(run.completed > 0, "{what}: no query answered");
    anyhow::ensure!(
        run.not_noerror == 0,
        "{what}: {} of {} answers were not NOERROR",
        run.not_noerror,
        run.completed
    );
    if run.lost > 0 {
        eprintln!(
            "          {what}: {} of {} queries lost (no answer within 2 s)",
            run.lost, run.sent
        );
    }
    Ok(())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Resident memory of `pid` in MB (VmRSS).
fn vm_rss_mb(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| anyhow!("no VmRSS in {path}"))?;
    Ok(kb / 1024.0)
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// `20k` for 20000, `1500` for 1500.
fn rate_label(qps: u32) -> String {
    let k = f64::from(qps) / 1000.0;
    if qps >= 1000 && k.fract() == 0.0 {
        format!("{k}k")
    } else {
        qps.to_string()
    }
}

fn markdown(rows: &[Row], args: &DnsArgs) -> String {
    let mut out = String::from("| server | qps | avg ms at max qps |");
    let mut rule = String::from("|---|---:|---:|");
    for &rate in &args.latency_qps {
        let _ = write!(out, " p50 / p99 / p99.9 ms at {} qps |", rate_label(rate));
        rule.push_str("---:|");
    }
    out.push_str(" server CPU µs/query | server cores | RSS MB | response B | log B/query | note |\n");
    rule.push_str("---:|---:|---:|---:|---:|---|\n");
    out.push_str(&rule);
    let dashes = |n: usize| vec!["–"; n].join(" | ");
    let columns = 9 + args.latency_qps.len();
    for row in rows {
        let line = match &row.outcome {
            Outcome::Measured(m) => {
                let mut line = format!("| {} | {:.0} | {:.3} |", row.name, m.qps, m.avg_saturated_ms);
                for l in &m.latencies {
                    let _ = write!(
                        line,
                        " {} / {} / {} |",
                        cell(l.p50_ms, 3),
                        cell(l.p99_ms, 3),
                        cell(l.p999_ms, 3)
                    );
                }
                let mut notes = Vec::new();
                if m.lost > 0 {
                    notes.push(format!("{} lost", m.lost));
                }
                for l in &m.latencies {
                    if l.answered_qps < f64::from(l.offered_qps) * 0.95 {
                        notes.push(format!("only {:.0} of {} qps answered", l.answered_qps, l.offered_qps));
                    }
                }
                let _ = write!(
                    line,
                    " {} | {} | {} | {} | {} | {} |",
                    cell(m.cpu_us_per_query, 2),
                    cell(m.cpu_cores, 2),
                    cell(m.rss_mb, 1),
                    cell(m.response_bytes, 0),
                    cell(m.log_bytes_per_query, 0),
                    notes.join("; ")
                );
                line
            }
            Outcome::Missing(package) => format!(
                "| {} | {} | not installed (`apt-get install {package}`) |",
                row.name,
                dashes(columns - 2)
            ),
            Outcome::Failed(reason) => {
                format!(
                    "| {} | {} | failed: {} |",
                    row.name,
                    dashes(columns - 2),
                    one_line(reason)
                )
            }
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = write!(
        out,
        "\nqps: dnsperf -c {} -T {} -q {} for {} s over loopback, inside the server's namespace. \
         Percentiles: {} s runs at fixed rates (-Q), from dnsperf -v per-query latencies.",
        args.clients, args.threads, args.outstanding, args.secs, args.latency_secs
    );
    out
}

fn ratios(rows: &[Row]) -> String {
    let get = |name: &str| rows.iter().find(|r| r.name == name).and_then(Row::measured);
    let knot = get("knot");
    let mut out = String::new();
    for name in ["grove"] {
        let Some(g) = get(name) else { continue };
        let qps = knot
            .filter(|k| k.qps > 0.0)
            .map_or("n/a".into(), |k| format!("{:.2}", g.qps / k.qps));
        let cpu = match (g.cpu_us_per_query, knot.and_then(|k| k.cpu_us_per_query)) {
            (Some(g), Some(k)) if k > 0.0 => format!("{:.2}", g / k),
            _ => "n/a".into(),
        };
        let _ = writeln!(out, "{name} / knot: qps {qps} (target ≥ 1), server CPU per query {cpu}");
        if let Some(l) = g.latencies.last() {
            let p99 = l.p99_ms.map_or("n/a".into(), |p| format!("{p:.3} ms"));
            let knot_p99 = knot
                .and_then(|k| k.latencies.iter().find(|kl| kl.offered_qps == l.offered_qps))
                .and_then(|kl| kl.p99_ms)
                .map_or("n/a".into(), |p| format!("{p:.3} ms"));
            let _ = writeln!(
                out,
                "{name} p99 at {} qps: {p99} (target < 1 ms; knot: {knot_p99})",
                l.offered_qps
            );
        }
    }
    out
}

/// The last line. `grove_p99_ms` is grove's (as shipped) p99 at the last
/// `--latency-qps` rate (by default the highest, 20,000 qps).
fn json(rows: &[Row]) -> String {
    let get = |name: &str| rows.iter().find(|r| r.name == name).and_then(Row::measured);
    let num = |v: Option<f64>| v.map_or_else(|| "null".to_string(), |v| format!("{v:.3}"));
    format!(
        "{{\"bench\":\"dns\",\"grove_qps\":{},\"knot_qps\":{},\"grove_p99_ms\":{}}}",
        num(get("grove").map(|m| m.qps)),
        num(get("knot").map(|m| m.qps)),
        num(get("grove").and_then(|m| m.latencies.last()).and_then(|l| l.p99_ms)),
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
