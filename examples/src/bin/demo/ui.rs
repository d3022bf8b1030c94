//! The demo's voice: numbered steps, indented progress, flushed at once so
//! the user sees each line as it happens.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

static STEP: AtomicUsize = AtomicUsize::new(0);

/// A new step: `[n] what`.
pub fn step(what: &str) {
    let n = STEP.fetch_add(1, Ordering::Relaxed) + 1;
    say(&format!("[{n}] {what}…"));
}

/// A detail of the current step.
pub fn progress(what: &str) {
    say(&format!("    {what}"));
}

/// A line as it is.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A block of text indented by four spaces.
pub fn indented(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}
