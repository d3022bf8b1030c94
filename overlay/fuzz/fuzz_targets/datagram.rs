//! One UDP datagram (or a short sequence) into B's receive path; see
//! `overlay::fuzz_harness::datagram` for the input format and the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| overlay::fuzz_harness::datagram(data));
