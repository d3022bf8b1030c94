//! A small, fast, unkeyed hasher for the directory's maps.
//!
//! The maps are keyed by service names and node ids that only the control
//! plane (or netmanager's root-only API) inserts. Queries only look keys
//! up, and lookups of chosen keys cannot degrade a table whose contents the
//! asker does not control, so a keyed (SipHash) hasher buys nothing here and
//! costs a fifth of a `closest` query. This is the multiply-rotate scheme
//! of rustc's FxHasher.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash-style hasher: eight bytes at a time.
#[derive(Clone, Copy, Default)]
pub(crate) struct FastHasher {
    hash: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            if let Ok(word) = <[u8; 8]>::try_from(chunk) {
                self.add(u64::from_le_bytes(word));
            }
        }
        // Byte by byte: a `memcpy` call for the tail would cost more than
        // the whole hash of a short name.
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let word = rest
                .iter()
                .enumerate()
                .fold(0u64, |w, (i, &b)| w | (u64::from(b) << (8 * i)));
            self.add(word ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn distinguishes_nearby_keys() {
        let build = BuildHasherDefault::<FastHasher>::default();
        let keys = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "node-1",
            "node-10",
            "node-1\0",
            "abcdefgh",
            "abcdefghi",
        ];
        let hashes: Vec<u64> = keys.iter().map(|k| build.hash_one(k)).collect();
        for i in 0..keys.len() {
            for j in i + 1..keys.len() {
                assert_ne!(hashes[i], hashes[j], "{:?} {:?}", keys[i], keys[j]);
            }
        }
        let mut map: FastMap<String, u32> = FastMap::default();
        map.insert("ms2".into(), 2);
        assert_eq!(map.get("ms2"), Some(&2));
    }
}
