//! Per pair of sites: the RTT the geography model predicts, the RTT pinged
//! across the emulated underlay, and the RTT pinged through the tunnel.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use netns_tests::{geo_one_way_delay, great_circle_km, ping_with, PingOptions, PingStats};

use crate::bed::DemoBed;
use crate::stop;
use crate::ui::step;

/// One row of the table.
pub struct PairRtt {
    pub a: String,
    pub b: String,
    pub km: f64,
    pub model: Duration,
    pub underlay: PingStats,
    pub overlay: PingStats,
}

impl PairRtt {
    /// Overlay minus underlay average, in ms (what the tunnel adds).
    pub fn tunnel_cost_ms(&self) -> Option<f64> {
        Some(ms(self.overlay.avg()?) - ms(self.underlay.avg()?))
    }
}

/// Pings every pair `count` times over the underlay, then over the overlay.
pub fn measure(bed: &DemoBed, count: u32) -> Result<Vec<PairRtt>> {
    step(&format!(
        "measuring round trips: {count} pings per pair, underlay and overlay"
    ));
    let options = PingOptions {
        count,
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
    };
    let mut rows = Vec::new();
    for (a, b) in bed.pairs() {
        let (na, nb) = (bed.tb.node(a), bed.tb.node(b));
        let (sa, sb) = (
            na.site().context("node without site")?,
            nb.site().context("node without site")?,
        );
        let ping = |to: IpAddr, what: &str| -> Result<PingStats> {
            stop::check()?;
            let stats = ping_with(na.netns(), to, &options)
                .with_context(|| format!("ping {what} {} → {} ({to})", na.name(), nb.name()));
            stop::check()?;
            stats
        };
        let underlay = ping(IpAddr::V4(nb.ipv4()), "underlay")?;
        let overlay = ping(bed.overlay(b), "overlay")?;
        rows.push(PairRtt {
            a: na.name().to_owned(),
            b: nb.name().to_owned(),
            km: great_circle_km(sa, sb),
            model: geo_one_way_delay(sa, sb) * 2,
            underlay,
            overlay,
        });
    }
    Ok(rows)
}

/// The table, ready to print.
pub fn render(rows: &[PairRtt]) -> String {
    let mut out = format!(
        "  {:<22} {:>9} {:>10} {:>13} {:>12} {:>12}\n",
        "pair", "distance", "model RTT", "underlay RTT", "overlay RTT", "tunnel adds"
    );
    for r in rows {
        let pair = format!("{} ↔ {}", r.a, r.b);
        let cost = r
            .tunnel_cost_ms()
            .map_or("–".into(), |c| format!("{c:+.2} ms"));
        out.push_str(&format!(
            "  {:<22} {:>6.0} km {:>7.1} ms {:>13} {:>12} {:>12}\n",
            pair,
            r.km,
            ms(r.model),
            cell(&r.underlay),
            cell(&r.overlay),
            cost
        ));
    }
    out
}

fn cell(stats: &PingStats) -> String {
    let loss = if stats.received < stats.transmitted {
        format!(
            " ({}/{} lost)",
            stats.transmitted - stats.received,
            stats.transmitted
        )
    } else {
        String::new()
    };
    match stats.avg() {
        Some(avg) => format!("{:.2} ms{loss}", ms(avg)),
        None => "no reply".into(),
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
