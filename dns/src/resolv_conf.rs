//! The host's upstream resolvers, from `/etc/resolv.conf` (resolv.conf(5)).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::config::GROVE_LOOPBACK;
use crate::DnsError;

/// Where the host's resolver configuration lives.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// DNS port upstreams are asked on (resolv.conf has no port syntax).
pub const DNS_PORT: u16 = 53;

/// The `nameserver` addresses in resolv.conf text, in order, without
/// duplicates, skipping:
///
/// * comments: lines whose first character is `#` or `;`, and anything after
///   the address on a `nameserver` line;
/// * grove's own loopback resolver address ([`GROVE_LOOPBACK`]), so that a
///   host pointed at grove does not make grove forward to itself;
/// * the unspecified address (`0.0.0.0`, `::`);
/// * IPv6 addresses with a zone (`fe80::1%eth0`): an `IpAddr` cannot carry
///   the zone, and a link-local address without one is unusable;
/// * anything that does not parse.
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(Ok(address)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if address == IpAddr::V4(GROVE_LOOPBACK) || address.is_unspecified() || out.contains(&address) {
            continue;
        }
        out.push(address);
    }
    out
}

/// Reads and parses a resolv.conf file (normally [`RESOLV_CONF`]).
pub fn read_resolv_conf(path: &Path) -> Result<Vec<IpAddr>, DnsError> {
    let text = std::fs::read_to_string(path).map_err(|source| DnsError::ReadResolvConf {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_resolv_conf(&text))
}

/// Upstream socket addresses for `nameservers` on port 53, leaving out any
/// address grove itself listens on (`own`), so forwarding cannot loop.
pub fn upstreams_from(nameservers: &[IpAddr], own: &[SocketAddr]) -> Vec<SocketAddr> {
    nameservers
        .iter()
        .map(|&ip| SocketAddr::new(ip, DNS_PORT))
        .filter(|up| !own.contains(up))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().expect("test address")).collect()
    }

    #[test]
    fn typical_files() {
        let resolved = "# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n\
                        nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        assert_eq!(parse_resolv_conf(resolved), ips(&["127.0.0.53"]));
        let plain = "domain example.com\nnameserver 192.0.2.1\nnameserver\t2001:db8::53 # primary v6\n\
                     ; nameserver 192.0.2.99\nnameserver 192.0.2.2 ; trailing\n";
        assert_eq!(
            parse_resolv_conf(plain),
            ips(&["192.0.2.1", "2001:db8::53", "192.0.2.2"])
        );
    }

    #[test]
    fn skips_ours_duplicates_and_garbage() {
        let text = "nameserver 127.0.0.153\nnameserver 0.0.0.0\nnameserver ::\nnameserver fe80::1%eth0\n\
                    nameserver 10.0.0.1\nnameserver 10.0.0.1\nnameserver not-an-ip\nnameserver\n\
                    nameservers 10.0.0.9\n#nameserver 10.0.0.8\n  nameserver 10.0.0.2\n\u{feff}garbage \u{1F332}\n";
        assert_eq!(parse_resolv_conf(text), ips(&["10.0.0.1", "10.0.0.2"]));
        assert!(parse_resolv_conf("").is_empty());
    }

    #[test]
    fn upstreams_leave_out_our_listeners() {
        let own: Vec<SocketAddr> = vec![
            "10.18.0.1:53".parse().expect("ok"),
            "127.0.0.1:5353".parse().expect("ok"),
        ];
        let ups = upstreams_from(&ips(&["10.18.0.1", "127.0.0.1", "9.9.9.9"]), &own);
        let want: Vec<SocketAddr> = vec!["127.0.0.1:53".parse().expect("ok"), "9.9.9.9:53".parse().expect("ok")];
        assert_eq!(ups, want);
    }

    #[test]
    fn read_reports_the_path() {
        let err = read_resolv_conf(Path::new("/nonexistent/resolv.conf")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/resolv.conf"));
    }
}
