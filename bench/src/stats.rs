//! Sample sets and their spread. Every figure the report prints comes with
//! min, p50, p99 and max, because the machine is shared and noisy: a p50
//! alone would hide how much of a figure is the neighbours' doing.

use std::time::Duration;

/// Durations, sorted once when the set is complete.
pub struct Samples {
    ns: Vec<u64>,
}

impl Samples {
    pub fn new(mut ns: Vec<u64>) -> Samples {
        ns.sort_unstable();
        Samples { ns }
    }

    pub fn from_durations(d: &[Duration]) -> Samples {
        Samples::new(d.iter().map(|d| d.as_nanos() as u64).collect())
    }

    pub fn len(&self) -> usize {
        self.ns.len()
    }

    /// Nearest-rank percentile (`p` in 0..=100); zero for an empty set.
    pub fn pct(&self, p: f64) -> Duration {
        if self.ns.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.ns.len() as f64).ceil() as usize;
        Duration::from_nanos(self.ns[rank.clamp(1, self.ns.len()) - 1])
    }

    pub fn min(&self) -> Duration {
        self.pct(0.0)
    }

    pub fn max(&self) -> Duration {
        self.pct(100.0)
    }

    /// `min .. p50 .. p99 .. max` on one line.
    pub fn spread(&self) -> String {
        format!(
            "n={} min {} p50 {} p99 {} max {}",
            self.len(),
            fmt(self.min()),
            fmt(self.pct(50.0)),
            fmt(self.pct(99.0)),
            fmt(self.max())
        )
    }
}

/// A duration in the unit that keeps it readable.
pub fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `a / b`, as "1.23x" (or "n/a" when b is zero).
pub fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        return "n/a".into();
    }
    format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s = Samples::new((1..=100).collect());
        assert_eq!(s.pct(50.0), Duration::from_nanos(50));
        assert_eq!(s.pct(99.0), Duration::from_nanos(99));
        assert_eq!(s.min(), Duration::from_nanos(1));
        assert_eq!(s.max(), Duration::from_nanos(100));
        assert_eq!(Samples::new(vec![]).pct(50.0), Duration::ZERO);
    }
}
