//! Ctrl-C, SIGTERM and SIGHUP turned into a flag that long-running tools
//! (the demo, the benchmarks) check between steps, so they unwind through
//! the `Drop` guards that stop daemons and delete namespaces instead of
//! dying with them still in place.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::{Error, Result};

static STOP: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// A stop signal arrived; returned as an error so `?` unwinds.
#[derive(Debug)]
pub struct Interrupted(pub i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            libc::SIGINT => "Ctrl-C (SIGINT)",
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            _ => "a signal",
        };
        write!(f, "interrupted by {name}")
    }
}

impl std::error::Error for Interrupted {}

extern "C" fn on_signal(signal: libc::c_int) {
    // Only atomics here: they are async-signal-safe.
    SIGNAL.store(signal, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP.
pub fn install() -> Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only touches atomics;
        // sigemptyset and sigaction get valid pointers and are checked.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(Error::io(
                format!("installing a handler for signal {signal}"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// True once a stop signal arrived.
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Fails with [`Interrupted`] once a stop signal arrived.
pub fn check() -> std::result::Result<(), Interrupted> {
    if requested() {
        return Err(Interrupted(SIGNAL.load(Ordering::SeqCst)));
    }
    Ok(())
}

/// Sleeps up to `duration`, waking early (with [`Interrupted`]) on a signal.
pub fn sleep(duration: Duration) -> std::result::Result<(), Interrupted> {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        check()?;
        std::thread::sleep(Duration::from_millis(50).min(duration));
    }
    check()
}
