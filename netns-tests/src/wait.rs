//! Waiting for conditions instead of sleeping blindly.

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How often [`wait_until`] re-checks its condition.
const POLL: Duration = Duration::from_millis(20);

/// Polls `condition` every 20 ms until it returns true, or fails with
/// [`Error::Timeout`] after `timeout`.
pub fn wait_until(timeout: Duration, condition: impl FnMut() -> bool) -> Result<()> {
    wait_until_named("condition", timeout, condition)
}

/// Like [`wait_until`], naming the awaited condition in the timeout error.
pub fn wait_until_named(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                timeout,
            });
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_condition_holds() {
        let mut n = 0;
        wait_until(Duration::from_secs(5), || {
            n += 1;
            n >= 3
        })
        .expect("condition holds");
        assert_eq!(n, 3);
    }

    #[test]
    fn times_out() {
        let err = wait_until_named("never", Duration::from_millis(50), || false).expect_err("must time out");
        assert!(err.to_string().contains("never"));
    }
}
