//! Running a closure inside a network namespace, for sockets a test drives
//! from Rust (TCP transfers, hand-made datagrams).
//!
//! `setns` changes the calling thread only, so the closure runs on a fresh
//! OS thread that enters the namespace and exits afterwards; sockets created
//! there stay bound to the namespace wherever they are used later.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::{Error, Result};

/// Runs `f` on a new thread inside namespace `netns` and returns its result.
pub fn in_netns<T, F>(netns: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = format!("/run/netns/{netns}");
    let file = File::open(&path).map_err(|e| Error::io(format!("open {path}"), e))?;
    let handle = std::thread::spawn(move || -> Result<T> {
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(Error::io("setns", std::io::Error::last_os_error()));
        }
        Ok(f())
    });
    handle
        .join()
        .map_err(|_| Error::Config(format!("closure inside netns {netns} panicked")))?
}
