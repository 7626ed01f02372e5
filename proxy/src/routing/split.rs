//! Weighted choice among TrafficSplit backends.

/// Cumulative weights; a zero weight is never chosen.
#[derive(Debug, Clone)]
pub struct WeightedChoice {
    cumulative: Vec<u64>,
}

impl WeightedChoice {
    /// None when the weights sum to zero.
    pub fn new(weights: &[u32]) -> Option<Self> {
        let mut total = 0u64;
        let cumulative: Vec<u64> = weights
            .iter()
            .map(|w| {
                total += u64::from(*w);
                total
            })
            .collect();
        (total > 0).then_some(Self { cumulative })
    }

    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The index chosen for a uniform random number.
    pub fn pick(&self, random: u64) -> usize {
        let r = random % self.total();
        // The first index whose cumulative weight exceeds r; zero-weight
        // entries share their predecessor's cumulative value and are skipped.
        self.cumulative.partition_point(|&c| c <= r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_in_proportion_and_never_zero_weights() {
        let choice = WeightedChoice::new(&[0, 90, 0, 10, 0]).expect("positive total");
        assert_eq!(choice.total(), 100);
        let mut counts = [0u32; 5];
        for r in 0..100u64 {
            counts[choice.pick(r)] += 1;
        }
        assert_eq!(counts, [0, 90, 0, 10, 0]);
    }

    #[test]
    fn zero_total_is_refused() {
        assert!(WeightedChoice::new(&[0, 0]).is_none());
        assert!(WeightedChoice::new(&[]).is_none());
    }

    #[test]
    fn large_random_numbers_wrap() {
        let choice = WeightedChoice::new(&[1, 1]).expect("positive");
        assert_eq!(choice.pick(u64::MAX - 1), 0);
        assert_eq!(choice.pick(u64::MAX), 1);
    }
}
