//! Finding a service the way any program would: the system resolver.
//! Addresses come from `getaddrinfo` (std's `ToSocketAddrs`), which reads
//! `/etc/resolv.conf` (in a workload: the node's resolver, with the app's
//! search list, so `closest.anonymise` needs no zone). getaddrinfo does
//! not say how long an answer may be kept, so the TTL comes from the same
//! stub resolver's `res_search` of the A record (libresolv: the same
//! servers and search list as getaddrinfo; `res_query` would skip the
//! search list and send `closest.anonymise.` to the internet), parsed here.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

/// Used when the TTL cannot be learnt: grove's TTL for moving answers.
pub const DEFAULT_TTL: Duration = Duration::from_secs(2);

/// One lookup: the addresses, best first, and how long they may be used.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// getaddrinfo's answer (IPv4 first).
    pub addrs: Vec<SocketAddr>,
    /// The smallest TTL of the A records, or [`DEFAULT_TTL`].
    pub ttl: Duration,
}

/// Why a name did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// getaddrinfo failed (NXDOMAIN, no server, …).
    #[error("{name}: {source}")]
    Lookup {
        /// The name.
        name: String,
        /// What getaddrinfo said.
        source: std::io::Error,
    },
    /// It answered with nothing.
    #[error("{0}: no address")]
    Empty(String),
}

/// Resolves `name` to addresses with `port`, through the system resolver.
pub fn resolve(name: &str, port: u16) -> Result<Resolved, ResolveError> {
    let mut addrs: Vec<SocketAddr> = (name, port)
        .to_socket_addrs()
        .map_err(|source| ResolveError::Lookup { name: name.to_owned(), source })?
        .collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs.dedup();
    if addrs.is_empty() {
        return Err(ResolveError::Empty(name.to_owned()));
    }
    let ttl = a_record_ttl(name).unwrap_or(DEFAULT_TTL);
    Ok(Resolved { addrs, ttl })
}

#[link(name = "resolv")]
extern "C" {
    // libresolv's before glibc 2.34, libc's since (libresolv is then a stub).
    fn res_search(dname: *const libc::c_char, class: libc::c_int, kind: libc::c_int, answer: *mut u8, anslen: libc::c_int) -> libc::c_int;
}

/// The TTL of `name`'s A records, asked of the system's stub resolver
/// (the same search list and servers getaddrinfo used).
fn a_record_ttl(name: &str) -> Option<Duration> {
    let query = std::ffi::CString::new(name).ok()?;
    let mut answer = vec![0u8; 4096];
    // SAFETY: `query` is NUL-terminated and `answer` holds `anslen` bytes.
    // res_search's state (`_res`) is per thread in glibc, so threads may call it at once.
    let len = unsafe { res_search(query.as_ptr(), 1, 1, answer.as_mut_ptr(), answer.len() as libc::c_int) };
    let len = usize::try_from(len).ok().filter(|&l| l > 0 && l <= answer.len())?;
    min_a_ttl(&answer[..len])
}

/// The smallest TTL among the A records of a DNS response.
pub fn min_a_ttl(response: &[u8]) -> Option<Duration> {
    let message = Message::from_vec(response).ok()?;
    message
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .map(|r| r.ttl)
        .min()
        .map(|ttl| Duration::from_secs(u64::from(ttl)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_resolves_through_getaddrinfo() {
        let r = resolve("localhost", 9).expect("localhost");
        assert!(r.addrs.iter().any(|a| a.ip().is_loopback()), "{r:?}");
    }

    #[test]
    fn the_ttl_is_read_from_a_response() {
        // A response to `closest.x.grove A` with one A record, TTL 2.
        let response: &[u8] = &[
            0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, // header: 1 question, 1 answer
            7, b'c', b'l', b'o', b's', b'e', b's', b't', 1, b'x', 5, b'g', b'r', b'o', b'v', b'e', 0, 0, 1, 0, 1,
            0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 2, 0, 4, 10, 18, 0, 66,
        ];
        assert_eq!(min_a_ttl(response), Some(Duration::from_secs(2)));
        assert_eq!(min_a_ttl(&response[..20]), None);
    }
}
