//! Ctrl-C, SIGTERM and SIGHUP become a flag the benchmark checks between
//! steps, so it unwinds through the `Drop` guards (daemons stopped,
//! namespaces deleted) instead of dying with them in place.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP.
pub fn install() -> anyhow::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only touches an
        // atomic; sigemptyset and sigaction get valid pointers and are checked.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        anyhow::ensure!(
            rc == 0,
            "cannot install a handler for signal {signal}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Fails once a stop signal arrived.
pub fn check() -> anyhow::Result<()> {
    anyhow::ensure!(!STOP.load(Ordering::SeqCst), "interrupted by a signal");
    Ok(())
}

/// Sleeps up to `duration`, returning early on a stop signal.
pub fn sleep(duration: Duration) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline && !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
}
