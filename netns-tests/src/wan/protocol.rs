//! wanem's control protocol: one command per line over a unix stream
//! socket, one reply line per command.
//!
//! ```text
//! delay <src-ip> <dst-ip> <ms>     one-way delay src→dst (ms, fractional ok)
//! loss <src-ip> <dst-ip> <pct>     drop pct % of packets src→dst (0–100)
//! cut <ip-a> <ip-b>                drop everything between a and b, both ways
//! heal <ip-a> <ip-b>               undo cut
//! default <ms>                     delay for pairs without their own
//! stats                            counters, as one line of JSON
//! ```
//!
//! Replies are `ok`, `ok <payload>` or `err <reason>`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// One control command.
#[derive(Debug, Clone, PartialEq)]
pub enum WanCommand {
    /// One-way delay from `src` to `dst`.
    Delay { src: IpAddr, dst: IpAddr, delay: Duration },
    /// Share of packets from `src` to `dst` to drop, in percent.
    Loss { src: IpAddr, dst: IpAddr, percent: f64 },
    /// Drop everything between `a` and `b`, both directions.
    Cut { a: IpAddr, b: IpAddr },
    /// Undo a [`WanCommand::Cut`].
    Heal { a: IpAddr, b: IpAddr },
    /// Delay for pairs without their own.
    Default { delay: Duration },
    /// Report counters.
    Stats,
}

/// Help text for the protocol, shown by `wanem --help`.
pub const PROTOCOL_HELP: &str = "\
Control protocol (unix stream socket, one command per line, one reply line each):
  delay <src-ip> <dst-ip> <ms>   one-way delay src->dst in ms (fractional ok)
  loss <src-ip> <dst-ip> <pct>   drop pct % (0-100) of packets src->dst
  cut <ip-a> <ip-b>              drop all packets between a and b, both ways
  heal <ip-a> <ip-b>             undo cut
  default <ms>                   delay for pairs without their own
  stats                          counters as one line of JSON
Replies: `ok`, `ok <payload>` or `err <reason>`.
Example: echo 'delay 198.18.1.2 198.18.2.2 20' | socat - UNIX:/tmp/wan.sock";

impl WanCommand {
    /// Parses one line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ip = |i: usize| -> Result<IpAddr, String> {
            let w = words.get(i).ok_or_else(|| format!("missing argument {i}"))?;
            w.parse().map_err(|_| format!("bad ip address {w:?}"))
        };
        let number = |i: usize| -> Result<f64, String> {
            let w = words.get(i).ok_or_else(|| format!("missing argument {i}"))?;
            match w.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                _ => Err(format!("bad number {w:?}")),
            }
        };
        let arity = |n: usize| -> Result<(), String> {
            if words.len() == n {
                Ok(())
            } else {
                Err(format!("{} takes {} arguments", words[0], n - 1))
            }
        };
        let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
        match words.first().copied() {
            None => Err("empty command".into()),
            Some("delay") => {
                arity(4)?;
                Ok(WanCommand::Delay { src: ip(1)?, dst: ip(2)?, delay: ms(number(3)?) })
            }
            Some("loss") => {
                arity(4)?;
                let percent = number(3)?;
                if percent > 100.0 {
                    return Err("loss is a percentage, 0-100".into());
                }
                Ok(WanCommand::Loss { src: ip(1)?, dst: ip(2)?, percent })
            }
            Some("cut") => {
                arity(3)?;
                Ok(WanCommand::Cut { a: ip(1)?, b: ip(2)? })
            }
            Some("heal") => {
                arity(3)?;
                Ok(WanCommand::Heal { a: ip(1)?, b: ip(2)? })
            }
            Some("default") => {
                arity(2)?;
                Ok(WanCommand::Default { delay: ms(number(1)?) })
            }
            Some("stats") => {
                arity(1)?;
                Ok(WanCommand::Stats)
            }
            Some(other) => Err(format!("unknown command {other:?}")),
        }
    }
}

impl fmt::Display for WanCommand {
    /// The wire form, parseable by [`WanCommand::parse`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        match self {
            WanCommand::Delay { src, dst, delay } => write!(f, "delay {src} {dst} {}", ms(delay)),
            WanCommand::Loss { src, dst, percent } => write!(f, "loss {src} {dst} {percent}"),
            WanCommand::Cut { a, b } => write!(f, "cut {a} {b}"),
            WanCommand::Heal { a, b } => write!(f, "heal {a} {b}"),
            WanCommand::Default { delay } => write!(f, "default {}", ms(delay)),
            WanCommand::Stats => write!(f, "stats"),
        }
    }
}

/// Formats a reply line (without the newline).
pub fn format_reply(reply: &Result<Option<String>, String>) -> String {
    match reply {
        Ok(None) => "ok".into(),
        Ok(Some(payload)) => format!("ok {payload}"),
        Err(reason) => format!("err {reason}"),
    }
}

/// Parses a reply line into the payload (possibly empty) or the reason.
pub fn parse_reply(line: &str) -> Result<String, String> {
    let line = line.trim_end();
    if line == "ok" {
        Ok(String::new())
    } else if let Some(payload) = line.strip_prefix("ok ") {
        Ok(payload.to_string())
    } else if let Some(reason) = line.strip_prefix("err ") {
        Err(reason.to_string())
    } else {
        Err(format!("malformed reply {line:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let a: IpAddr = "198.18.1.2".parse().expect("ip");
        let b: IpAddr = "fd18:2::2".parse().expect("ip");
        for cmd in [
            WanCommand::Delay { src: a, dst: b, delay: Duration::from_micros(20_500) },
            WanCommand::Loss { src: a, dst: b, percent: 12.5 },
            WanCommand::Cut { a, b },
            WanCommand::Heal { a, b },
            WanCommand::Default { delay: Duration::from_millis(3) },
            WanCommand::Stats,
        ] {
            assert_eq!(WanCommand::parse(&cmd.to_string()), Ok(cmd));
        }
    }

    #[test]
    fn rejects_bad_input() {
        for line in ["", "delay 1.2.3.4 5.6.7.8", "delay x 5.6.7.8 3", "loss 1.2.3.4 5.6.7.8 101", "jump", "stats now", "default -1"] {
            assert!(WanCommand::parse(line).is_err(), "{line:?} accepted");
        }
    }

    #[test]
    fn replies() {
        assert_eq!(format_reply(&Ok(None)), "ok");
        assert_eq!(parse_reply("ok {\"a\":1}\n"), Ok("{\"a\":1}".into()));
        assert_eq!(parse_reply(&format_reply(&Err("nope".into()))), Err("nope".into()));
        assert!(parse_reply("what").is_err());
    }
}
