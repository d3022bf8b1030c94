//! Shared helpers for the scenario tests.

use std::time::Duration;

use netns_tests::{require_root, tools, Testbed, TestbedBuilder};

/// Fails the test with a clear message unless running as root; installs
/// the system tools the scenario tests use if they are missing (a fresh
/// machine: `cargo test` alone works).
pub fn need_root() {
    if let Err(e) = require_root() {
        panic!("{e}");
    }
    let needs: Vec<tools::Need> = tools::DEMO.iter().chain(tools::TESTS).copied().collect();
    if let Err(e) = tools::ensure(&needs, true, &|line| eprintln!("{line}")) {
        panic!("{e}");
    }
}

/// Builds `builder`, failing the test with the error if that is impossible.
pub fn build(builder: TestbedBuilder) -> Testbed {
    need_root();
    match builder.build() {
        Ok(tb) => tb,
        Err(e) => panic!("cannot build testbed: {e}"),
    }
}

/// A testbed of `n` nodes with no added delay.
pub fn testbed(n: usize) -> Testbed {
    build(Testbed::builder().with_nodes(n))
}

/// Milliseconds, as float, for messages and comparisons.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
