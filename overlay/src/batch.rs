//! Collects encrypted datagrams back to back in one buffer and cuts them into
//! runs that one GSO `sendmsg` can carry: same destination, equal sizes (the
//! last may be shorter), at most `max_segments` and 64 KiB. Pure: no I/O.

use std::net::SocketAddr;

/// Largest payload of one GSO send (the UDP length field covers it all).
const MAX_GSO_BYTES: usize = 65_000;

#[derive(Debug)]
struct Entry {
    to: SocketAddr,
    start: usize,
    len: usize,
}

/// One syscall's worth of datagrams.
#[derive(Debug, PartialEq, Eq)]
pub struct Run<'a> {
    pub to: SocketAddr,
    pub contents: &'a [u8],
    /// Segment size when more than one datagram is in the run.
    pub segment: Option<usize>,
    pub datagrams: usize,
}

pub struct SendBatch {
    buf: Vec<u8>,
    used: usize,
    entries: Vec<Entry>,
    max_segments: usize,
}

impl SendBatch {
    pub fn new(capacity_bytes: usize, max_segments: usize) -> Self {
        Self {
            buf: vec![0; capacity_bytes],
            used: 0,
            entries: Vec::with_capacity(128),
            max_segments: max_segments.max(1),
        }
    }

    /// Room for one more datagram of up to `max_len` bytes; write into it and
    /// then [`commit`](Self::commit) the length actually used. The buffer only
    /// grows the first time a batch is larger than any before.
    #[inline]
    pub fn spare(&mut self, max_len: usize) -> &mut [u8] {
        let end = self.used + max_len;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        &mut self.buf[self.used..end]
    }

    #[inline]
    pub fn commit(&mut self, to: SocketAddr, len: usize) {
        self.entries.push(Entry {
            to,
            start: self.used,
            len,
        });
        self.used += len;
    }

    /// Copies a datagram in (handshake replies and the like).
    pub fn push(&mut self, to: SocketAddr, data: &[u8]) {
        self.spare(data.len()).copy_from_slice(data);
        self.commit(to, data.len());
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.used = 0;
    }

    /// The datagrams grouped into GSO runs, in order.
    pub fn runs(&self) -> Runs<'_> {
        Runs { batch: self, next: 0 }
    }
}

pub struct Runs<'a> {
    batch: &'a SendBatch,
    next: usize,
}

impl<'a> Iterator for Runs<'a> {
    type Item = Run<'a>;

    fn next(&mut self) -> Option<Run<'a>> {
        let entries = &self.batch.entries;
        let first = entries.get(self.next)?;
        let segment = first.len;
        let mut count = 1;
        let mut total = first.len;
        while let Some(e) = entries.get(self.next + count) {
            let previous_full = entries[self.next + count - 1].len == segment;
            if e.to != first.to
                || !previous_full
                || e.len > segment
                || count >= self.batch.max_segments
                || total + e.len > MAX_GSO_BYTES
            {
                break;
            }
            count += 1;
            total += e.len;
        }
        self.next += count;
        Some(Run {
            to: first.to,
            contents: &self.batch.buf[first.start..first.start + total],
            segment: (count > 1).then_some(segment),
            datagrams: count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 2], port))
    }

    fn summary(b: &SendBatch) -> Vec<(u16, usize, Option<usize>)> {
        b.runs().map(|r| (r.to.port(), r.datagrams, r.segment)).collect()
    }

    #[test]
    fn equal_sizes_to_one_peer_form_one_run_and_last_may_be_short() {
        let mut b = SendBatch::new(0, 64);
        for len in [100, 100, 100, 40] {
            b.push(addr(1), &vec![7; len]);
        }
        assert_eq!(summary(&b), vec![(1, 4, Some(100))]);
        assert_eq!(b.runs().next().map(|r| r.contents.len()), Some(340));
    }

    #[test]
    fn destination_change_short_datagram_and_larger_one_split_runs() {
        let mut b = SendBatch::new(0, 64);
        for (port, len) in [(1, 100), (1, 100), (2, 100), (2, 50), (2, 100), (2, 120)] {
            b.push(addr(port), &vec![1; len]);
        }
        assert_eq!(
            summary(&b),
            vec![(1, 2, Some(100)), (2, 2, Some(100)), (2, 1, None), (2, 1, None)]
        );
    }

    #[test]
    fn respects_segment_and_byte_limits() {
        let mut b = SendBatch::new(0, 3);
        for _ in 0..7 {
            b.push(addr(1), &[0; 10]);
        }
        assert_eq!(summary(&b), vec![(1, 3, Some(10)), (1, 3, Some(10)), (1, 1, None)]);

        let mut b = SendBatch::new(0, 64);
        for _ in 0..50 {
            b.push(addr(1), &[0; 1452]);
        }
        let runs: Vec<usize> = b.runs().map(|r| r.contents.len()).collect();
        assert!(runs.iter().all(|n| *n <= MAX_GSO_BYTES), "{runs:?}");
        assert_eq!(runs.iter().sum::<usize>(), 50 * 1452);
    }

    #[test]
    fn clear_reuses_the_buffer() {
        let mut b = SendBatch::new(16, 64);
        b.push(addr(1), &[1; 200]);
        b.clear();
        assert!(b.is_empty());
        b.push(addr(1), &[2; 10]);
        assert_eq!(b.runs().next().map(|r| r.contents.to_vec()), Some(vec![2; 10]));
    }
}
