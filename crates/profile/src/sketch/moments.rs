//! Count, mean and variance in one pass (Welford), mergeable (Chan et al.).

/// Running count, mean and sum of squared deviations, updated with Welford's method so the
/// variance stays accurate even when values are large and close together.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// Adds one value.
    #[inline]
    pub fn insert(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        // Through i64: one instruction on x86-64, where u64 to f64 takes several.
        self.mean += delta / (self.count as i64) as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Folds in another summary (the parallel formula of Chan, Golub and LeVeque).
    pub fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count as f64 / n;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.count += other.count;
    }

    /// How many values were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The arithmetic mean, if any value was added.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// The sample standard deviation (denominator `n - 1`), if at least two values were added.
    pub fn stddev(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_two_pass_and_merges() {
        let xs: Vec<f64> = (0..1000).map(|i| 1e9 + f64::from(i % 17) * 0.25).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
        let (mut a, mut b, mut all) = (Moments::default(), Moments::default(), Moments::default());
        for (i, &x) in xs.iter().enumerate() {
            if i < 300 {
                a.insert(x)
            } else {
                b.insert(x)
            }
            all.insert(x);
        }
        a.merge(&b);
        for m in [a, all] {
            assert!((m.mean().unwrap() - mean).abs() < 1e-6);
            assert!((m.stddev().unwrap() - var.sqrt()).abs() < 1e-6 * var.sqrt());
        }
        assert_eq!(Moments::default().stddev(), None);
    }
}
