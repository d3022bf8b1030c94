//! Unique, short names for namespaces and interfaces.
//!
//! Tests run in parallel threads of one process and in several processes at
//! once, so names combine the process id with a per-process counter. Linux
//! interface names are at most 15 bytes (`IFNAMSIZ - 1`), so both numbers are
//! written in base 36 and the tag is truncated to fit.

use std::sync::atomic::{AtomicU64, Ordering};

/// Longest interface name Linux accepts (`IFNAMSIZ - 1`).
pub const MAX_IFNAME: usize = 15;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Returns `<tag>-<pid36>-<n36>`, unique across threads and processes and at
/// most [`MAX_IFNAME`] bytes long (the tag is cut short if needed).
///
/// The tag should be short ASCII without `-`, e.g. `"tb"` or `"wg"`.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("-{}-{}", base36(u64::from(std::process::id())), base36(n));
    let room = MAX_IFNAME.saturating_sub(suffix.len());
    let tag: String = tag.chars().filter(|c| c.is_ascii_alphanumeric()).take(room).collect();
    format!("{tag}{suffix}")
}

/// Parses the process id back out of a name made by [`unique_name`] (possibly
/// with further `-suffix`es), so leftovers of killed test processes can be
/// recognised.
pub fn owner_pid(name: &str) -> Option<u32> {
    let mut parts = name.split('-');
    let _tag = parts.next()?;
    let pid = parts.next()?;
    let _counter = parts.next()?;
    u32::from_str_radix(pid, 36).ok()
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_short() {
        let names: HashSet<String> = (0..10_000).map(|_| unique_name("averylongtag")).collect();
        assert_eq!(names.len(), 10_000);
        assert!(names.iter().all(|n| n.len() <= MAX_IFNAME));
    }

    #[test]
    fn owner_pid_round_trips() {
        let name = unique_name("tb");
        assert_eq!(owner_pid(&name), Some(std::process::id()));
        assert_eq!(owner_pid(&format!("{name}-r")), Some(std::process::id()));
        assert_eq!(owner_pid("plain"), None);
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(4_194_304).len(), 5);
    }
}
