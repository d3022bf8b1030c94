//! What this machine offers: CPUs, memory, architecture and load, read
//! from /proc.

use crate::model::Capacity;

/// The capacity offered to instances: flags if given, else the machine's.
pub fn capacity(cpu_millis: Option<u32>, memory_mib: Option<u64>) -> Capacity {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    Capacity::new(cpu_millis.unwrap_or(cpus * 1000), memory_mib.unwrap_or_else(total_memory_mib))
}

/// `MemTotal` in MiB (0 if /proc/meminfo cannot be read).
pub fn total_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo").ok().as_deref().and_then(parse_meminfo).unwrap_or(0)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// The 1-minute load average.
pub fn load() -> f64 {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|t| t.split_whitespace().next()?.parse().ok()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meminfo_and_the_machine() {
        assert_eq!(parse_meminfo("MemTotal:       24576000 kB\nMemFree: 1 kB\n"), Some(24000));
        assert_eq!(parse_meminfo("nothing"), None);
        let c = capacity(None, None);
        assert!(c.cpu_millis >= 1000 && c.memory_mib > 0, "{c:?}");
        assert_eq!(capacity(Some(500), Some(64)), Capacity::new(500, 64));
        assert!(load() >= 0.0);
    }
}
