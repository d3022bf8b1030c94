//! Raw bytes through hickory's request parsing and grove's handler, as the
//! server would run them (UDP and TCP encodings). Must never panic.
#![no_main]

use std::sync::OnceLock;

use dns::fuzz_support::{fuzz_handler, run_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static HANDLER: OnceLock<dns::GroveHandler> = OnceLock::new();
    let handler = HANDLER.get_or_init(fuzz_handler);
    run_request(handler, data);
});
