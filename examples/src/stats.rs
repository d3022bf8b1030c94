//! Round-trip times kept for a window, and their percentiles.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples of the last `window`.
#[derive(Debug)]
pub struct Window {
    window: Duration,
    samples: VecDeque<(Instant, f64)>,
}

impl Window {
    /// Keeps samples for `window`.
    pub fn new(window: Duration) -> Window {
        Window { window, samples: VecDeque::new() }
    }

    /// Adds one at `now`, dropping those older than the window.
    pub fn push(&mut self, now: Instant, value: f64) {
        self.samples.push_back((now, value));
        self.expire(now);
    }

    /// Drops what is older than the window.
    pub fn expire(&mut self, now: Instant) {
        while self.samples.front().is_some_and(|(at, _)| now.duration_since(*at) > self.window) {
            self.samples.pop_front();
        }
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `p`-th percentile (0–100), nearest rank; `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let mut values: Vec<f64> = self.samples.iter().map(|(_, v)| *v).collect();
        percentile(&mut values, p)
    }
}

/// The `p`-th percentile (0–100) of `values`, nearest rank (sorts them).
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile(&mut v, 100.0), Some(100.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn old_samples_leave_the_window() {
        let start = Instant::now();
        let mut w = Window::new(Duration::from_secs(1));
        w.push(start, 1.0);
        w.push(start + Duration::from_millis(500), 2.0);
        w.push(start + Duration::from_millis(1600), 3.0);
        assert_eq!(w.len(), 1);
        assert_eq!(w.percentile(50.0), Some(3.0));
    }
}
