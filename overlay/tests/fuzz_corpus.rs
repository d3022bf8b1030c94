//! Replays the fuzz corpus of `overlay/fuzz` on the stable toolchain, so every
//! input the fuzzer once found interesting stays a regression test.
//!
//! Each file goes through the same entry point as the fuzz target,
//! `overlay::fuzz_harness::datagram`, which panics on a broken invariant.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Replays every input of `dir`; returns how many there were.
fn replay(dir: &Path) -> usize {
    let files = files(dir);
    let mut failed = Vec::new();
    for path in &files {
        let input = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        // Shown with --nocapture; with GROVE_FUZZ_TRACE=1 each datagram follows.
        eprintln!("{}", path.display());
        if panic::catch_unwind(|| overlay::fuzz_harness::datagram(&input)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs failed:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
    files.len()
}

#[test]
fn datagram_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/datagram");
    let n = replay(&dir);
    // A missing or emptied corpus must fail, not pass vacuously.
    assert!(n >= 10, "only {n} inputs in {}", dir.display());
}
