//! Percentiles, the summary table and the final JSON line.

use std::fmt::Write as _;
use std::time::Duration;

use super::accuracy::{Accuracy, RttError};
use super::idle::Idle;
use super::trials::{Convergence, Failover, CONVERGE_TIMEOUT, FAILOVER_TIMEOUT};

/// Nearest-rank percentile (`p` in 0..=100) of unsorted values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Timings in seconds where a timeout counts as the timeout (a lower bound).
#[derive(Debug, Clone)]
pub struct Timings {
    secs: Vec<f64>,
    timeouts: usize,
    timeout: Duration,
}

impl Timings {
    pub fn new(took: impl Iterator<Item = Option<Duration>>, timeout: Duration) -> Timings {
        let mut t = Timings {
            secs: Vec::new(),
            timeouts: 0,
            timeout,
        };
        for d in took {
            t.timeouts += usize::from(d.is_none());
            t.secs.push(d.unwrap_or(timeout).as_secs_f64());
        }
        t
    }

    pub fn p(&self, p: f64) -> Option<f64> {
        percentile(&self.secs, p)
    }

    /// "p50 / p99 / max s (n trials)", with "≥" where a timeout decides.
    pub fn cell(&self) -> String {
        if self.secs.is_empty() {
            return "–".into();
        }
        let t = self.timeout.as_secs_f64();
        let f = |v: Option<f64>| {
            v.map_or("–".into(), |v| {
                if v >= t {
                    format!("≥ {v:.0}")
                } else {
                    format!("{v:.3}")
                }
            })
        };
        let mut s = format!(
            "{} / {} / {} s ({} trials",
            f(self.p(50.0)),
            f(self.p(99.0)),
            f(self.p(100.0)),
            self.secs.len()
        );
        if self.timeouts > 0 {
            let _ = write!(s, ", {} timed out after {t:.0} s", self.timeouts);
        }
        s.push(')');
        s
    }
}

/// Everything one run measured; `None` where a step failed.
#[derive(Debug, Default)]
pub struct Results {
    pub nodes: usize,
    pub cities: usize,
    pub ms2_instances: usize,
    pub converged_s: Option<f64>,
    pub coord_err: Vec<f64>,
    pub accuracy: Option<Accuracy>,
    pub rtt: Option<RttError>,
    pub convergence: Option<Vec<Convergence>>,
    pub failover: Option<Vec<Failover>>,
    pub idle: Option<Idle>,
    pub rss_mb: Option<Vec<f64>>,
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

impl Results {
    pub fn converge(&self) -> Option<Timings> {
        self.convergence
            .as_ref()
            .map(|c| Timings::new(c.iter().map(|t| t.took), CONVERGE_TIMEOUT))
    }

    pub fn failover_kind(&self, silent: bool) -> Option<Timings> {
        let f: Vec<&Failover> = self
            .failover
            .as_ref()?
            .iter()
            .filter(|f| f.silent == silent)
            .collect();
        (!f.is_empty()).then(|| Timings::new(f.iter().map(|f| f.took), FAILOVER_TIMEOUT))
    }

    /// The worse of the two kinds' p99.
    pub fn failover_p99(&self) -> Option<f64> {
        [self.failover_kind(false), self.failover_kind(true)]
            .iter()
            .flatten()
            .filter_map(|t| t.p(99.0))
            .reduce(f64::max)
    }

    pub fn markdown(&self) -> String {
        let mut rows: Vec<(String, String, &str)> = vec![
            (
                "nodes / cities / ms2 instances".into(),
                format!("{} / {} / {}", self.nodes, self.cities, self.ms2_instances),
                "",
            ),
            (
                "mesh up: every node sees every other alive".into(),
                num(self.converged_s, 1) + " s",
                "",
            ),
            (
                "Vivaldi error (each node's own estimate), median / max".into(),
                format!(
                    "{} / {}",
                    num(percentile(&self.coord_err, 50.0), 3),
                    num(percentile(&self.coord_err, 100.0), 3)
                ),
                "",
            ),
        ];
        if let Some(a) = &self.accuracy {
            rows.push((
                "`closest` names the truly nearest instance".into(),
                format!(
                    "**{}** ({} of {} answers; {} of {} askers had a clear winner; {} unanswered)",
                    num(a.ratio(), 3),
                    a.correct,
                    a.answers + a.unanswered,
                    a.considered_askers,
                    a.askers,
                    a.unanswered
                ),
                "≥ 0.99",
            ));
        }
        if let Some(r) = &self.rtt {
            rows.push((
                "RTT estimate error \\|est − true\\| / true, median / p90".into(),
                format!(
                    "**{}** / {} ({} pairs estimated; {} also measured)",
                    pct(r.median()),
                    pct(percentile(&r.estimated, 90.0)),
                    r.estimated.len(),
                    r.measured.len()
                ),
                "≤ 10 %",
            ));
            rows.push((
                "  same, inter-city pairs only, median".into(),
                pct(percentile(&r.estimated_intercity, 50.0)),
                "",
            ));
            rows.push((
                "  measured RTT vs the model, median".into(),
                pct(percentile(&r.measured, 50.0)),
                "",
            ));
        }
        if let Some(t) = self.converge() {
            rows.push((
                "new instance answered by every resolver, p50 / p99 / max".into(),
                t.cell(),
                "≤ 1 s",
            ));
        }
        if let Some(c) = &self.convergence {
            let post: Vec<f64> = c.iter().map(|c| c.post.as_secs_f64() * 1000.0).collect();
            rows.push((
                "  (POST /v1/workloads itself, median)".into(),
                num(percentile(&post, 50.0), 0) + " ms",
                "",
            ));
        }
        for (silent, label) in [
            (false, "SIGKILL"),
            (true, "silent: links cut, then SIGKILL"),
        ] {
            if let Some(t) = self.failover_kind(silent) {
                rows.push((
                    format!(
                        "failover ({label}): dead instance out of every answer, p50 / p99 / max"
                    ),
                    t.cell(),
                    "p99 ≤ 2 s",
                ));
            }
        }
        if let Some(f) = &self.failover {
            let back: Vec<f64> = f
                .iter()
                .filter_map(|f| f.comeback.map(|d| d.as_secs_f64()))
                .collect();
            let relapses: usize = f.iter().map(|f| f.relapses).sum();
            rows.push((
                "restarted node's new instance answered by its city, median / max".into(),
                format!(
                    "{} / {} s ({} of {} came back)",
                    num(percentile(&back, 50.0), 1),
                    num(percentile(&back, 100.0), 1),
                    back.len(),
                    f.len()
                ),
                "",
            ));
            rows.push((
                "answers that named a dead instance again after dropping it".into(),
                relapses.to_string(),
                "0",
            ));
        }
        if let Some(idle) = &self.idle {
            let b = &idle.bytes_per_sec;
            rows.push((
                "idle underlay bytes/s per node (rx + tx, incl. tunnel keepalives), mean / max"
                    .into(),
                format!("{} / {}", num(mean(b), 0), num(percentile(b, 100.0), 0)),
                "",
            ));
            rows.push((
                "idle netmanager CPU per node, mean / max (% of one core)".into(),
                format!(
                    "{} / {}",
                    num(mean(&idle.cpu).map(|c| c * 100.0), 1),
                    num(percentile(&idle.cpu, 100.0).map(|c| c * 100.0), 1)
                ),
                "",
            ));
            rows.push((
                "idle: packets/s through the WAN emulator, its CPU (% of one core)".into(),
                format!(
                    "{} / {}",
                    num(idle.wanem_pps, 0),
                    num(idle.wanem_cpu.map(|c| c * 100.0), 1)
                ),
                "",
            ));
        }
        if let Some(m) = &self.rss_mb {
            rows.push((
                "netmanager RSS MB, mean / max".into(),
                format!("{} / {}", num(mean(m), 1), num(percentile(m, 100.0), 1)),
                "",
            ));
        }
        let mut out = String::from("| measure | value | target |\n|---|---|---|\n");
        for (m, v, t) in rows {
            let _ = writeln!(out, "| {m} | {v} | {t} |");
        }
        out
    }

    pub fn json(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "null".to_string(), |v| format!("{v:.3}"));
        format!(
            "{{\"bench\":\"closest\",\"nodes\":{},\"accuracy\":{},\"rtt_median_rel_err\":{},\"failover_p99_s\":{},\"converge_p99_s\":{}}}",
            self.nodes,
            f(self.accuracy.as_ref().and_then(Accuracy::ratio)),
            f(self.rtt.as_ref().and_then(RttError::median)),
            f(self.failover_p99()),
            f(self.converge().and_then(|t| t.p(99.0))),
        )
    }
}
