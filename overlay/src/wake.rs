//! Shutdown signalling for the blocking data-plane threads.
//!
//! The hot loops use non-blocking sockets and only block in `poll(2)` when
//! there is nothing to do; the poll set always includes an eventfd that
//! shutdown makes readable, so every thread wakes at once.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub(crate) struct Shutdown {
    stopped: AtomicBool,
    event: OwnedFd,
}

impl Shutdown {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            stopped: AtomicBool::new(false),
            // SAFETY: fd is a fresh descriptor we own.
            event: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(crate) fn trigger(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        let _ = unsafe {
            libc::write(
                self.event.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Blocks until `fd` is ready for `events` (POLLIN/POLLOUT); `false` means
    /// shut down.
    pub(crate) fn wait(&self, fd: RawFd, events: libc::c_short) -> bool {
        let mut fds = [
            libc::pollfd { fd, events, revents: 0 },
            libc::pollfd {
                fd: self.event.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            if self.is_stopped() {
                return false;
            }
            // SAFETY: fds is a valid array of two pollfd for the duration of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n >= 0 {
                return !self.is_stopped();
            }
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return !self.is_stopped();
            }
        }
    }

    /// Sleeps for `dur` unless shut down first; `false` means shut down.
    pub(crate) fn sleep(&self, dur: Duration) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.event.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = dur.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: fds is a valid array of one pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        !self.is_stopped()
    }
}
