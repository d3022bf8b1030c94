//! Ctrl-C, SIGTERM and SIGHUP become a flag the demo polls between steps
//! (the testbed library's `interrupt`), so it always unwinds through the
//! `Drop` guards that stop the daemons and delete the namespaces.

pub use netns_tests::interrupt::{check, install, sleep, Interrupted};
