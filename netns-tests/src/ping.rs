//! `ping` from inside a namespace, with its summary parsed.

use std::net::IpAddr;
use std::time::Duration;

use crate::{Error, Netns, Result};

/// How a [`ping_with`] run is done.
#[derive(Debug, Clone, Copy)]
pub struct PingOptions {
    /// Echo requests to send.
    pub count: u32,
    /// Gap between requests (root may go down to 2 ms).
    pub interval: Duration,
    /// How long to wait for a reply when none came at all.
    pub timeout: Duration,
}

impl Default for PingOptions {
    fn default() -> Self {
        PingOptions {
            count: 3,
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
        }
    }
}

/// The `rtt min/avg/max/mdev` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttStats {
    pub min: Duration,
    pub avg: Duration,
    pub max: Duration,
    pub mdev: Duration,
}

/// What a ping run reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingStats {
    pub transmitted: u32,
    pub received: u32,
    /// Round-trip times; `None` when no reply came back.
    pub rtt: Option<RttStats>,
}

impl PingStats {
    /// Fraction of requests without a reply, 0.0–1.0.
    pub fn loss(&self) -> f64 {
        if self.transmitted == 0 {
            return 1.0;
        }
        1.0 - f64::from(self.received) / f64::from(self.transmitted)
    }

    /// Average RTT, if any reply came back.
    pub fn avg(&self) -> Option<Duration> {
        self.rtt.map(|r| r.avg)
    }
}

/// Pings `ip` `count` times (200 ms apart) from inside `from`.
pub fn ping(from: &Netns, ip: IpAddr, count: u32) -> Result<PingStats> {
    ping_with(
        from,
        ip,
        &PingOptions {
            count,
            ..PingOptions::default()
        },
    )
}

/// Pings with explicit options. Lost replies are not an error; only a ping
/// that could not run at all (exit status 2, e.g. no route) is.
pub fn ping_with(from: &Netns, ip: IpAddr, options: &PingOptions) -> Result<PingStats> {
    let count = options.count.to_string();
    let interval = format!("{:.3}", options.interval.as_secs_f64());
    let timeout = options.timeout.as_secs().max(1).to_string();
    let ip = ip.to_string();
    let output = from.exec("ping", &["-n", "-q", "-c", &count, "-i", &interval, "-W", &timeout, &ip])?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match parse_ping(&stdout) {
        Ok(stats) => Ok(stats),
        Err(e) if output.status.code() == Some(2) || !output.status.success() && stdout.is_empty() => {
            Err(Error::Command {
                command: format!("ping {ip} in {}", from.name()),
                status: output.status.to_string(),
                stderr: format!("{}{}", String::from_utf8_lossy(&output.stderr).trim(), e),
            })
        }
        Err(e) => Err(e),
    }
}

/// Parses iputils ping's summary:
///
/// ```text
/// 20 packets transmitted, 19 received, 5% packet loss, time 961ms
/// rtt min/avg/max/mdev = 40.1/40.3/41.0/0.2 ms
/// ```
pub fn parse_ping(text: &str) -> Result<PingStats> {
    let err = |reason: &str| Error::Parse {
        tool: "ping".into(),
        reason: format!("{reason} in {text:?}"),
    };
    let summary = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .ok_or_else(|| err("no summary line"))?;
    let number_before = |word: &str| -> Option<u32> {
        let words: Vec<&str> = summary.split([',', ' ']).filter(|w| !w.is_empty()).collect();
        let i = words.iter().position(|w| *w == word)?;
        words.get(i.checked_sub(1)?)?.parse().ok()
    };
    let transmitted = number_before("packets").ok_or_else(|| err("no transmitted count"))?;
    let received = number_before("received").ok_or_else(|| err("no received count"))?;
    let rtt = match text.lines().find(|l| l.starts_with("rtt ") || l.starts_with("round-trip")) {
        None => None,
        Some(line) => {
            let values = line
                .split('=')
                .nth(1)
                .ok_or_else(|| err("rtt line without values"))?
                .trim();
            // `… = a/b/c/d ms`, with `, pipe N` after it when replies
            // overlapped (a ping interval shorter than the RTT).
            let values = values.split(',').next().unwrap_or(values).trim().trim_end_matches("ms").trim();
            let ms: Vec<f64> = values
                .split('/')
                .map(|v| v.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| err("bad rtt number"))?;
            let [min, avg, max, mdev] = ms[..] else {
                return Err(err("rtt line without four values"));
            };
            let d = |ms: f64| Duration::from_secs_f64(ms / 1000.0);
            Some(RttStats {
                min: d(min),
                avg: d(avg),
                max: d(max),
                mdev: d(mdev),
            })
        }
    };
    Ok(PingStats {
        transmitted,
        received,
        rtt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_summary_with_rtt() {
        let text = "PING 198.18.1.2 (198.18.1.2) 56(84) bytes of data.\n\n--- 198.18.1.2 ping statistics ---\n\
                    20 packets transmitted, 19 received, 5% packet loss, time 961ms\n\
                    rtt min/avg/max/mdev = 40.112/40.350/41.020/0.210 ms\n";
        let stats = parse_ping(text).expect("parses");
        assert_eq!(stats.transmitted, 20);
        assert_eq!(stats.received, 19);
        let rtt = stats.rtt.expect("rtt");
        assert_eq!(rtt.avg, Duration::from_micros(40_350));
        assert!((stats.loss() - 0.05).abs() < 1e-9);
    }

    #[test]
    fn parses_rtt_with_pipe() {
        let text = "10 packets transmitted, 10 received, 0% packet loss, time 297ms\n\
                    rtt min/avg/max/mdev = 11.590/16.060/53.401/12.461 ms, pipe 2\n";
        let rtt = parse_ping(text).expect("parses").rtt.expect("rtt");
        assert_eq!(rtt.min, Duration::from_micros(11_590));
        assert_eq!(rtt.max, Duration::from_micros(53_401));
    }

    #[test]
    fn parses_total_loss() {
        let text = "--- 10.0.0.1 ping statistics ---\n3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms\n";
        let stats = parse_ping(text).expect("parses");
        assert_eq!((stats.transmitted, stats.received, stats.rtt), (3, 0, None));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_ping("connect: Network is unreachable").is_err());
    }
}
