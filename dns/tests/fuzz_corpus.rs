//! Replays the fuzz corpus (`fuzz/corpus/request`, seeds plus whatever
//! fuzzing found worth keeping) through the request path on stable Rust, so
//! CI catches regressions without a nightly toolchain.

use std::path::Path;

use dns::fuzz_support::{fuzz_handler, run_request};

#[test]
fn corpus_replays_without_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request");
    let handler = fuzz_handler();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        run_request(&handler, &bytes);
        count += 1;
    }
    assert!(count >= 10, "only {count} corpus files in {}", dir.display());
}
