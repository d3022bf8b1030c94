//! The `port` field: Oakestra's port-mapping string, read into typed mappings.
//!
//! Oakestra's NetManager (oakestra-net, `ManageContainerPorts`) splits the
//! string at `;`, takes `/udp` or `/tcp` (default) off each entry and reads
//! `host[:service]` (the service port defaults to the host port), then
//! DNATs the host port to the workload. The fixtures use `"80"`, `"80:80"`,
//! `"6080:80/tcp"`, `"50100:50100/udp"` and `""` (no ports). grove reads the
//! same grammar, more strictly: no port 0, no ranges (`6000-6010` is not part
//! of the format), no empty entries, no mapping published twice.
//!
//! ```text
//! ports   = "" | mapping *( ";" mapping )
//! mapping = node-port [ ":" service-port ] [ "/" ( "tcp" | "udp" ) ]
//! ```

use std::fmt;

use dns::Protocol;
use serde::{Deserialize, Serialize};

/// One published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The port published on the node that runs the instance.
    pub node_port: u16,
    /// The port the service listens on inside its network namespace.
    pub service_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// Why a `port` string cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortError {
    /// `"80;;81"` or a trailing `;`.
    EmptyEntry,
    /// Not a decimal port number (1-65535).
    NotAPort {
        /// The offending text.
        found: String,
    },
    /// `"6000-6010"`.
    Range {
        /// The offending text.
        found: String,
    },
    /// A protocol other than `tcp` or `udp`.
    Protocol {
        /// The offending text.
        found: String,
    },
    /// More than one `:` or `/`.
    Malformed {
        /// The offending entry.
        found: String,
    },
    /// The same node port and protocol twice.
    Duplicate {
        /// The mapping published twice.
        mapping: PortMapping,
    },
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORMAT: &str = "port mappings are node-port[:service-port][/tcp|/udp], joined by \";\"";
        match self {
            PortError::EmptyEntry => write!(f, "has an empty entry; {FORMAT}"),
            PortError::NotAPort { found } => write!(f, "{found:?} is not a port (1-65535); {FORMAT}"),
            PortError::Range { found } => write!(f, "{found:?} is a port range, which Oakestra's format does not have; {FORMAT}"),
            PortError::Protocol { found } => write!(f, "{found:?} is not a protocol (tcp or udp); {FORMAT}"),
            PortError::Malformed { found } => write!(f, "{found:?} is not a port mapping; {FORMAT}"),
            PortError::Duplicate { mapping } => {
                write!(f, "node port {}/{} is published twice", mapping.node_port, mapping.protocol)
            }
        }
    }
}

/// Reads a `port` string; `""` means no ports.
pub fn parse_ports(text: &str) -> Result<Vec<PortMapping>, PortError> {
    let mut mappings: Vec<PortMapping> = Vec::new();
    if text.trim().is_empty() {
        return Ok(mappings);
    }
    for entry in text.split(';') {
        let mapping = parse_mapping(entry.trim())?;
        if mappings.iter().any(|m| m.node_port == mapping.node_port && m.protocol == mapping.protocol) {
            return Err(PortError::Duplicate { mapping });
        }
        mappings.push(mapping);
    }
    Ok(mappings)
}

fn parse_mapping(entry: &str) -> Result<PortMapping, PortError> {
    if entry.is_empty() {
        return Err(PortError::EmptyEntry);
    }
    let malformed = || PortError::Malformed { found: entry.to_owned() };
    let (ports, protocol) = match entry.split_once('/') {
        None => (entry, Protocol::Tcp),
        Some((_, rest)) if rest.contains('/') => return Err(malformed()),
        Some((ports, "tcp")) => (ports, Protocol::Tcp),
        Some((ports, "udp")) => (ports, Protocol::Udp),
        Some((_, other)) => return Err(PortError::Protocol { found: other.to_owned() }),
    };
    let (node, service) = match ports.split_once(':') {
        None => (ports, ports),
        Some((_, rest)) if rest.contains(':') => return Err(malformed()),
        Some(pair) => pair,
    };
    Ok(PortMapping { node_port: parse_port(node)?, service_port: parse_port(service)?, protocol })
}

fn parse_port(text: &str) -> Result<u16, PortError> {
    if text.contains('-') && !text.starts_with('-') {
        return Err(PortError::Range { found: text.to_owned() });
    }
    // Digits only: `u16::from_str` would also take a leading `+`.
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(PortError::NotAPort { found: text.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(node_port: u16, service_port: u16, protocol: Protocol) -> PortMapping {
        PortMapping { node_port, service_port, protocol }
    }

    #[test]
    fn reads_the_forms_oakestra_uses() {
        assert_eq!(parse_ports(""), Ok(vec![]));
        assert_eq!(parse_ports("80"), Ok(vec![mapping(80, 80, Protocol::Tcp)]));
        assert_eq!(parse_ports("9090:8080"), Ok(vec![mapping(9090, 8080, Protocol::Tcp)]));
        assert_eq!(parse_ports("6080:80/tcp"), Ok(vec![mapping(6080, 80, Protocol::Tcp)]));
        assert_eq!(parse_ports("50100:50100/udp"), Ok(vec![mapping(50100, 50100, Protocol::Udp)]));
        assert_eq!(
            parse_ports("80;53/udp; 8443:443"),
            Ok(vec![mapping(80, 80, Protocol::Tcp), mapping(53, 53, Protocol::Udp), mapping(8443, 443, Protocol::Tcp)])
        );
        // Same port, other protocol: two mappings.
        assert_eq!(parse_ports("53;53/udp").map(|m| m.len()), Ok(2));
    }

    #[test]
    fn refuses_what_is_not_a_mapping() {
        let fails = |text: &str| parse_ports(text).expect_err(text);
        assert_eq!(fails("6000-6010"), PortError::Range { found: "6000-6010".into() });
        assert_eq!(fails("0"), PortError::NotAPort { found: "0".into() });
        assert_eq!(fails("65536"), PortError::NotAPort { found: "65536".into() });
        assert_eq!(fails("+80"), PortError::NotAPort { found: "+80".into() });
        assert_eq!(fails("-1"), PortError::NotAPort { found: "-1".into() });
        assert_eq!(fails("http"), PortError::NotAPort { found: "http".into() });
        assert_eq!(fails("80/sctp"), PortError::Protocol { found: "sctp".into() });
        assert_eq!(fails("80;"), PortError::EmptyEntry);
        assert_eq!(fails("1:2:3"), PortError::Malformed { found: "1:2:3".into() });
        assert_eq!(fails("80/tcp/udp"), PortError::Malformed { found: "80/tcp/udp".into() });
        assert_eq!(fails("80:80;80:81"), PortError::Duplicate { mapping: mapping(80, 81, Protocol::Tcp) });
        assert!(fails("6000-6010").to_string().contains("port range"));
    }
}
