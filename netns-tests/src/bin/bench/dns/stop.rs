//! Ctrl-C, SIGTERM and SIGHUP become a flag the benchmark checks between
//! steps (the testbed library's `interrupt`), so it unwinds through the
//! `Drop` guards instead of dying with daemons and namespaces in place.

pub use netns_tests::interrupt::{check, install, sleep};
