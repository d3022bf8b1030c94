//! Resource amounts: CPU in millicores and memory in MiB, with the
//! saturating arithmetic the schedulers need. Saturating, because a report
//! can briefly show more reserved than total (a worker restarted with less
//! memory); that must read as "nothing free", never wrap or panic.

use serde::{Deserialize, Serialize};

use crate::sla::Resources;

/// An amount of CPU and memory: a total, a reservation or a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capacity {
    /// CPU, thousandths of a core (the SLA's whole vCPUs × 1000).
    pub cpu_millis: u32,
    /// Memory, MiB.
    pub memory_mib: u64,
}

impl Capacity {
    /// Nothing.
    pub const ZERO: Capacity = Capacity { cpu_millis: 0, memory_mib: 0 };

    /// An amount.
    pub const fn new(cpu_millis: u32, memory_mib: u64) -> Capacity {
        Capacity { cpu_millis, memory_mib }
    }

    /// What one instance of a service reserves.
    pub fn request(resources: &Resources) -> Capacity {
        Capacity { cpu_millis: resources.vcpus.saturating_mul(1000), memory_mib: u64::from(resources.memory_mib) }
    }

    /// `self − other` per dimension, floored at zero: free = total − reserved.
    pub fn saturating_sub(self, other: Capacity) -> Capacity {
        Capacity {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_mib: self.memory_mib.saturating_sub(other.memory_mib),
        }
    }

    /// `self + other` per dimension, capped at the maximum.
    pub fn saturating_add(self, other: Capacity) -> Capacity {
        Capacity {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory_mib: self.memory_mib.saturating_add(other.memory_mib),
        }
    }

    /// True when `request` fits into `self` in every dimension.
    pub fn fits(self, request: Capacity) -> bool {
        request.cpu_millis <= self.cpu_millis && request.memory_mib <= self.memory_mib
    }

    /// What is left of `self` (free) after placing `request`, as a share of
    /// `total` summed over CPU and memory: 0 is a perfect fit, 2 an empty
    /// candidate. Normalising per dimension keeps MiB from drowning
    /// millicores. A dimension with a zero total counts as fully used.
    pub fn leftover_share(self, request: Capacity, total: Capacity) -> f64 {
        let left = self.saturating_sub(request);
        share(f64::from(left.cpu_millis), f64::from(total.cpu_millis))
            + share(left.memory_mib as f64, total.memory_mib as f64)
    }
}

fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole).min(1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_is_total_minus_reserved_floored_at_zero() {
        let total = Capacity::new(4000, 8192);
        assert_eq!(total.saturating_sub(Capacity::new(1500, 1024)), Capacity::new(2500, 7168));
        assert_eq!(total.saturating_sub(Capacity::new(5000, 9000)), Capacity::ZERO);
        assert_eq!(Capacity::new(u32::MAX, u64::MAX).saturating_add(Capacity::new(1, 1)), Capacity::new(u32::MAX, u64::MAX));
    }

    #[test]
    fn fits_needs_every_dimension() {
        let free = Capacity::new(2000, 1024);
        for (request, fits) in [
            (Capacity::new(2000, 1024), true),
            (Capacity::ZERO, true),
            (Capacity::new(2001, 1), false),
            (Capacity::new(1, 1025), false),
        ] {
            assert_eq!(free.fits(request), fits, "{request:?}");
        }
    }

    #[test]
    fn request_from_the_sla() {
        assert_eq!(Capacity::request(&Resources { memory_mib: 512, vcpus: 2 }), Capacity::new(2000, 512));
        assert_eq!(Capacity::request(&Resources { memory_mib: 1, vcpus: u32::MAX }).cpu_millis, u32::MAX);
    }

    #[test]
    fn leftover_share_is_normalised() {
        let total = Capacity::new(4000, 4096);
        assert_eq!(total.leftover_share(total, total), 0.0);
        assert_eq!(total.leftover_share(Capacity::ZERO, total), 2.0);
        assert_eq!(total.leftover_share(Capacity::new(2000, 1024), total), 0.5 + 0.75);
        assert_eq!(Capacity::ZERO.leftover_share(Capacity::ZERO, Capacity::ZERO), 0.0);
    }
}
