//! Scenario tests on grove's network-namespace testbed — one test binary
//! for the crate, one module per area under `tests/netns/`.
//!
//! They need root (namespaces, veths, TUNs): run them with
//! `cargo test --release -p netns-tests` as root. Without root each test
//! fails with a message saying so.

/// Scenario modules live in `tests/netns/<name>.rs`; add new ones here.
mod netns {
    mod attack_kit;
    mod attacks_flood;
    mod attacks_member;
    mod attacks_stranger;
    mod control;
    mod control_security;
    mod dns;
    mod member_lifecycle;
    mod mesh;
    mod orchestrator_admission;
    mod orchestrator_deploy;
    mod orchestrator_faults;
    mod pipeline;
    mod pcap;
    mod sampling;
    mod support;
    mod teardown;
    mod wan;
}
