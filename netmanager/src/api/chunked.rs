//! `Transfer-Encoding: chunked`, decoded as bytes arrive: whole answers
//! ([`super::client`]) and endless streams ([`super::watch`]) alike. Pure.

/// Longest chunk-size line (hex size plus extensions) accepted.
const MAX_SIZE_LINE: usize = 1024;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("bad chunk size line")]
    BadSize,
    #[error("chunk not followed by CRLF")]
    MissingCrlf,
    #[error("chunk of {0} bytes is larger than allowed")]
    TooLarge(usize),
}

/// An incremental decoder; holds at most one incomplete chunk.
pub struct Dechunker {
    raw: Vec<u8>,
    done: bool,
    max_chunk: usize,
}

impl Dechunker {
    /// A decoder refusing chunks larger than `max_chunk` bytes.
    pub fn new(max_chunk: usize) -> Dechunker {
        Dechunker { raw: Vec::new(), done: false, max_chunk }
    }

    /// The last (empty) chunk was seen; trailers are ignored.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Takes bytes as read; appends the data of every complete chunk to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        if self.done {
            return Ok(());
        }
        self.raw.extend_from_slice(bytes);
        let mut at = 0;
        let result = loop {
            let rest = &self.raw[at..];
            let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
                break if rest.len() > MAX_SIZE_LINE { Err(ChunkError::BadSize) } else { Ok(()) };
            };
            let size = match chunk_size(&rest[..line_end]) {
                Some(size) => size,
                None => break Err(ChunkError::BadSize),
            };
            if size > self.max_chunk {
                break Err(ChunkError::TooLarge(size));
            }
            let data = line_end + 2;
            if size == 0 {
                self.done = true;
                at += data;
                break Ok(());
            }
            let end = data + size;
            if rest.len() < end + 2 {
                break Ok(());
            }
            if &rest[end..end + 2] != b"\r\n" {
                break Err(ChunkError::MissingCrlf);
            }
            out.extend_from_slice(&rest[data..end]);
            at += end + 2;
        };
        self.raw.drain(..at);
        result
    }
}

fn chunk_size(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    usize::from_str_radix(text.split(';').next()?.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_across_reads_of_any_size() {
        let wire = b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
        for step in 1..wire.len() {
            let mut d = Dechunker::new(16);
            let mut out = Vec::new();
            for piece in wire.chunks(step) {
                d.push(piece, &mut out).expect("valid");
            }
            assert_eq!((out.as_slice(), d.done()), (&b"abcde"[..], true), "step {step}");
        }
    }

    #[test]
    fn refuses_garbage_and_oversized_chunks() {
        let mut out = Vec::new();
        assert_eq!(Dechunker::new(16).push(b"zz\r\n", &mut out), Err(ChunkError::BadSize));
        assert_eq!(Dechunker::new(16).push(b"3\r\nabcX\r\n", &mut out), Err(ChunkError::MissingCrlf));
        assert_eq!(Dechunker::new(16).push(b"100\r\n", &mut out), Err(ChunkError::TooLarge(256)));
        assert_eq!(Dechunker::new(16).push(&[b'1'; 2000], &mut out), Err(ChunkError::BadSize));
        let mut d = Dechunker::new(16);
        assert_eq!(d.push(b"5\r\nab", &mut out), Ok(()));
        assert!(!d.done() && out.is_empty(), "an incomplete chunk waits");
    }
}
